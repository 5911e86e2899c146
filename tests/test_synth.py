"""The ECP5 flow really runs Yosys and nextpnr (YoWASP wheels) on a small Amaranth design."""

import json
import re
from pathlib import Path

import pytest
from amaranth.back import verilog
from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.codesign.resources import synth_core, synth_glue
from spikeforge.hw import synth
from spikeforge.hw.axis import INNER
from spikeforge.hw.devices import ECP5_DEVICES, ecp5_device
from spikeforge.hw.params import CoreParams
from spikeforge.hw.synth import (
    ROUTERS,
    SynthError,
    SynthReport,
    check_fits,
    count_resources,
    drop_zero_inits,
    synthesize,
)
from spikeforge.sw.config import SnnConfig


class Demo(wiring.Component):
    """A 512x32 block RAM (synchronous write and read), a 16-bit counter, a registered 16x16
    multiply."""

    waddr: In(9)
    wdata: In(32)
    we: In(1)
    raddr: In(9)
    rdata: Out(32)
    a: In(16)
    b: In(16)
    prod: Out(32)
    count: Out(16)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=32, depth=512, init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        m.d.comb += [
            wp.addr.eq(self.waddr),
            wp.data.eq(self.wdata),
            wp.en.eq(self.we),
            rp.addr.eq(self.raddr),
            self.rdata.eq(rp.data),
        ]
        a = Signal(16)
        b = Signal(16)
        m.d.sync += [
            a.eq(self.a),
            b.eq(self.b),
            self.prod.eq(a * b),
            self.count.eq(self.count + 1),
        ]
        return m


def write_demo(folder: Path) -> Path:
    path = folder / "demo.v"
    path.write_text(verilog.convert(Demo(), name="demo"))
    return path


@pytest.fixture(scope="module")
def demo_verilog(tmp_path_factory) -> Path:
    return write_demo(tmp_path_factory.mktemp("demo_src"))


@pytest.fixture(scope="module")
def demo_report(demo_verilog, tmp_path_factory) -> tuple[SynthReport, Path]:
    work = tmp_path_factory.mktemp("demo_work")
    return synthesize(demo_verilog, "demo", work, pnr=True, device="25k"), work


class Inits(wiring.Component):
    """Three memories: 1024 words of zeros, 1024 words one of which is not zero, and 512 words
    of zeros; each written and read through the ports."""

    addr: In(10)
    data: In(10)
    we: In(1)
    out: Out(30)

    def elaborate(self, platform):
        m = Module()
        mems = {
            "zeros": Memory(shape=10, depth=1024, init=[]),
            "seeded": Memory(shape=10, depth=1024, init=[0, 0, 5]),
            "small": Memory(shape=10, depth=512, init=[]),
        }
        outs = []
        for name, mem in mems.items():
            m.submodules[name] = mem
            wp, rp = mem.write_port(), mem.read_port()
            m.d.comb += [wp.addr.eq(self.addr), wp.data.eq(self.data), wp.en.eq(self.we)]
            m.d.comb += rp.addr.eq(~self.addr)
            outs.append(rp.data)
        m.d.comb += self.out.eq(Cat(*outs))
        return m


def test_only_large_all_zero_memory_initializers_are_dropped(tmp_path, monkeypatch):
    """The dropped initializer is the zero memory's alone, and Yosys maps the design to the
    same cells with it as without it."""
    text = verilog.convert(Inits(), name="inits")
    kept, dropped = drop_zero_inits(text, 1024)
    assert dropped == ["zeros"]
    assert text.count("initial begin") == 3
    assert kept.count("initial begin") == 2
    assert "reg [9:0] zeros [1023:0];" in kept
    assert drop_zero_inits(text, 2048) == (text, [])
    assert drop_zero_inits(text, 512)[1] == ["\\small", "zeros"]  # a Verilog keyword: escaped
    src = tmp_path / "inits.v"
    src.write_text(text)
    monkeypatch.setattr(synth, "ZERO_INIT_WORDS", 1024)
    with_drop = synthesize(src, "inits", tmp_path / "drop")
    assert (tmp_path / "drop" / "inits.synth.v").read_text() == kept
    monkeypatch.setattr(synth, "ZERO_INIT_WORDS", 1 << 20)
    without = synthesize(src, "inits", tmp_path / "keep")
    assert not (tmp_path / "keep" / "inits.synth.v").exists()
    assert with_drop.cells == without.cells


def test_synthesize_and_place_and_route(demo_report):
    report, work = demo_report
    assert report.device == "25k" and report.top == "demo"
    assert report.luts > 0
    assert report.ffs >= 16
    assert report.brams >= 1
    assert report.dsps >= 1
    assert report.pnr_status == "ok"
    assert report.fmax_mhz is not None and report.fmax_mhz > 0
    assert report.target_mhz == 100.0
    assert report.router == "router1"
    assert report.yosys_seconds > 0 and report.pnr_seconds is not None
    assert not report.out_of_context
    # The counting rule agrees with the cells and with nextpnr's packed LUT count.
    cells = dict(report.cells)
    assert count_resources(cells)["luts"] == report.luts
    assert cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0) == report.luts
    total = re.search(r"Total LUT4s:\s+(\d+)/", (work / "nextpnr.log").read_text())
    assert total is not None and int(total.group(1)) == report.luts
    assert report.pnr_luts is not None and report.luts <= report.pnr_luts <= report.luts + 10
    assert check_fits(report) == []
    for name in ("synth.ys", "yosys.log", "demo.json", "stat.json", "nextpnr.log", "report.json"):
        assert (work / name).is_file(), name
    summary = json.loads(json.dumps(report.to_dict()))
    assert summary["fmax_mhz"] == report.fmax_mhz
    assert summary["cells"]["MULT18X18D"] == report.dsps


def test_synthesis_only_and_pnr_timeout(demo_verilog, tmp_path):
    report = synthesize([demo_verilog], "demo", tmp_path / "a", device="45k")
    assert report.pnr_status == "not run"
    assert report.fmax_mhz is None and report.pnr_seconds is None and report.pnr_luts is None
    assert report.brams >= 1 and report.dsps >= 1
    late = synthesize(
        demo_verilog, "demo", tmp_path / "b", pnr=True, pnr_timeout=0.01, router=ROUTERS
    )
    assert late.pnr_status == "timeout"
    assert late.fmax_mhz is None
    assert late.device == "85k"
    # router1 ran past the deadline, then router2 on the same netlist (Yosys ran once)
    assert (late.router, late.pnr_timeouts) == ("router2", ("router1",))
    assert late.to_dict()["pnr_timeouts"] == ["router1"]
    assert (tmp_path / "b" / "nextpnr-router1-timeout.log").is_file()
    assert (tmp_path / "b" / "nextpnr.log").is_file()  # router2's
    assert SynthReport.from_dict(json.loads(json.dumps(late.to_dict()))) == late
    assert (late.luts, late.ffs, late.brams, late.dsps) == (
        report.luts,
        report.ffs,
        report.brams,
        report.dsps,
    )


def test_router2_places_and_routes_and_an_unknown_router_is_refused(demo_verilog, tmp_path):
    report = synthesize(demo_verilog, "demo", tmp_path, pnr=True, device="25k", router="router2")
    assert report.pnr_status == "ok" and report.fmax_mhz is not None
    assert report.router == "router2"
    assert "Running router2" in (tmp_path / "nextpnr.log").read_text()
    with pytest.raises(ValueError, match="router = 'router3' is not one of router1, router2"):
        synthesize(demo_verilog, "demo", tmp_path / "x", pnr=True, router="router3")
    for bad in ((), ("router2", "router3")):
        with pytest.raises(ValueError, match=r"is not one of router1, router2 \(or a sequence"):
            synthesize(demo_verilog, "demo", tmp_path / "x", pnr=True, router=bad)
    assert not (tmp_path / "x").exists()


def test_broken_verilog_raises_with_log(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input wire a, output wire y);\n  assign y = a +;\nendmodule\n")
    with pytest.raises(SynthError, match="syntax error") as info:
        synthesize(bad, "bad", tmp_path / "work", pnr=True)
    assert isinstance(info.value, RuntimeError)
    assert "yosys failed" in str(info.value)
    assert (tmp_path / "work" / "yosys.log").is_file()
    assert not (tmp_path / "work" / "nextpnr.log").exists()


def test_unknown_device(tmp_path):
    expected = r"device = '12k' is not known: allowed 25k, 45k, 85k"
    with pytest.raises(ValueError, match=expected):
        ecp5_device("12k")
    src = tmp_path / "top.v"
    src.write_text("module top(input wire a, output wire y);\n  assign y = a;\nendmodule\n")
    with pytest.raises(ValueError, match=expected):
        synthesize(src, "top", tmp_path, device="12k")
    assert not (tmp_path / "yosys.log").exists()
    assert ecp5_device().name == "85k"
    assert ecp5_device("45k").nextpnr_flag == "--45k"
    assert {d.package for d in ECP5_DEVICES.values()} == {"CABGA381"}


def make_report(**counts: int) -> SynthReport:
    base = {"luts": 100, "ffs": 100, "brams": 1, "dsps": 1}
    base.update(counts)
    return SynthReport(
        device="85k",
        top="t",
        fmax_mhz=None,
        target_mhz=100.0,
        pnr_status="not run",
        yosys_seconds=0.0,
        pnr_seconds=None,
        **base,
    )


def test_check_fits():
    assert check_fits(make_report()) == []
    assert check_fits(make_report(brams=208, dsps=156, luts=83640, ffs=83640)) == []
    assert check_fits(make_report(brams=230)) == ["BRAM: 230 used > 208 on 85k"]
    assert check_fits(make_report(luts=90000, ffs=83641, dsps=157)) == [
        "LUT: 90000 used > 83640 on 85k",
        "FF: 83641 used > 83640 on 85k",
        "DSP: 157 used > 156 on 85k",
    ]
    small = SynthReport.from_dict({**make_report(brams=60).to_dict(), "device": "25k"})
    assert check_fits(small) == ["BRAM: 60 used > 56 on 25k"]


def test_count_resources_rules():
    cells = {
        "LUT4": 10,
        "CCU2C": 3,
        "TRELLIS_DPR16X4": 2,
        "PFUMX": 4,
        "L6MUX21": 1,
        "TRELLIS_FF": 7,
        "DP16KD": 2,
        "PDPW16KD": 1,
        "MULT18X18D": 5,
    }
    assert count_resources(cells) == {"luts": 10 + 6 + 12, "ffs": 7, "brams": 3, "dsps": 5}


def test_an_arrays_interconnect_is_synthesized_with_its_cores_as_black_boxes(tmp_path):
    """The sweep adds each core shape's resources to the interconnect's; the interconnect's run
    must keep every core a black box (one cell each, not counted), or the cores count twice --
    as they did once the AXI4-Stream top moved them one level down."""
    net = SnnConfig(layers=(4, 4, 2), timesteps=2)
    cores = [
        CoreParams(net=net, layer=0, lanes=2, linked=True),
        CoreParams(net=net, layer=1, lanes=2, linked=True),
    ]
    glue = synth_glue(cores, tmp_path)
    boxes = {cell: n for cell, n in glue["cells"].items() if ".core" in cell}
    assert boxes == {f"spikeforge_array.{INNER}.core0": 1, f"spikeforge_array.{INNER}.core1": 1}
    core = synth_core(cores[0], tmp_path)
    assert glue["luts"] < core["luts"] / 2  # the router, the merger and the links alone
