"""The spiking training core: memories, FP/BP/WG/update engines and the host port.

The host port is two streams of 32-bit words (:func:`~spikeforge.hw.protocol.command_signature`
in, :func:`~spikeforge.hw.protocol.response_signature` out; protocol in
:mod:`spikeforge.hw.protocol`); the generated top gives them AXI4-Stream names
(:mod:`spikeforge.hw.axis`). Every memory is a single-clock
:class:`amaranth.lib.memory.Memory` with registered (non-transparent) read ports, which Yosys
maps to block RAM when large enough. Each memory port is shared by the engines that use it
through a small address multiplexer; engines that run at the same time (BP and WG) use
different ports. Debug reads go through the command stream, never through a wide debug mux.

Schedule of one training step (FORWARD, then BACKWARD with update)::

    FP  |t=0|t=1|...|t=T-1|
    BP                     |d(T-1) e(T-1)|d(T-2) e(T-2)|...|d(0) e(0)|
    WG                          |wg(T-1)      |wg(T-2)      |...     |wg(0)|
    UPD                                                                      |update|

BP's delta phase for ``t`` unlocks WG for ``t`` (``ready``), so WG accumulates ``t`` while BP
computes ``e_prev[t]`` and ``delta[t-1]``. The update starts when both are done.

ABORT (the host controller's ``abort`` pulse) resets every engine and the core's link ends
(emitter FIFOs, receivers) to idle: nothing the engines had in flight is written afterwards.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.hw import rw_check
from spikeforge.hw.backward import BackwardEngine, bp_error_drain
from spikeforge.hw.datapath import READ_LATENCY, delay_line
from spikeforge.hw.forward import FP_IN_FLIGHT, ForwardEngine
from spikeforge.hw.gradient import GradientEngine
from spikeforge.hw.host import HostController, readable_memories
from spikeforge.hw.host.writer import STAGE_LATENCY
from spikeforge.hw.links import (
    ErrorEmitter,
    ErrorReceiver,
    SpikeEmitter,
    SpikeReceiver,
    error_signature,
    spike_signature,
)
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import command_signature, response_signature
from spikeforge.hw.update import UpdateEngine

__all__ = ["SpikingCore", "host_port_members"]


def host_port_members() -> dict:
    """The host port: packets in on ``cmd``, answers out on ``rsp``."""
    return {"cmd": In(command_signature()), "rsp": Out(response_signature())}


class SpikingCore(wiring.Component):
    """One spiking training core computing layer ``params.layer`` with ``params.lanes`` lanes.

    Parameters
    ----------
    params : CoreParams
        Validated core parameters (sizes, widths, rules, seeds).

    A linked core (in a :class:`~spikeforge.hw.array.CoreArray`) also has its links and an
    ``abort`` output, the pulse that resets its engines and link ends (the array clears the
    links between cores with it). A simulation build (:mod:`~spikeforge.hw.rw_check`) also has
    ``rw_checked``, the count of its memories' checked read-during-write accesses.
    """

    def __init__(self, params: CoreParams):
        CoreParams.checked(params)
        self._params = params
        super().__init__(
            {
                **host_port_members(),
                **({"spk_i": In(spike_signature(params.n_in))} if params.spikes_in else {}),
                **(
                    {"spk_o": Out(spike_signature(params.layer_neurons))}
                    if params.spikes_out
                    else {}
                ),
                **({"err_i": In(error_signature(params.net.g_bits))} if params.errors_in else {}),
                **({"err_o": Out(error_signature(params.eprev_bits))} if params.errors_out else {}),
                **({"abort": Out(1)} if params.linked else {}),
                **rw_check.members(),
            }
        )

    @property
    def params(self) -> CoreParams:
        return self._params

    def elaborate(self, platform):
        m = Module()
        p = self._params
        P, G = p.lanes, p.groups
        specs = p.memory_map

        # -- memories ----------------------------------------------------------------------------
        mems, rd, wr = {}, {}, {}
        for name, spec in specs.items():
            if spec.owner != "core":
                continue
            init = []
            if name == "lfsr":
                seeds = p.lfsr_seeds()
                init = [sum(seeds[g * P + q] << (32 * q) for q in range(P)) for g in range(G)]
            # At least 2 words: a 1-word memory would get a zero-width address port, which
            # Verilator rejects.
            attrs = {"ram_style": "distributed"} if spec.distributed else None
            mem = Memory(
                shape=unsigned(spec.word_bits), depth=max(spec.depth, 2), init=init, attrs=attrs
            )
            m.submodules[f"mem_{name}"] = mems[name] = mem
            rd[name] = mem.read_port()
            # A packed memory takes whole words only (its lanes share the write enable).
            wr[name] = mem.write_port(granularity=None if spec.packed else spec.width)
        fused = p.fused_grads
        # The WG engine's own ports (it runs beside BP); a fused core has no WG engine.
        second = (
            {}
            if fused
            else {"deltas_b": mems["deltas"].read_port(), "nonzero_b": mems["nonzero"].read_port()}
        )
        # Every read word is registered once more right at the block RAM output; with the
        # registered addresses below that makes READ_LATENCY = 3.
        rdata = {}
        for name, port in [*rd.items(), *second.items()]:
            rdata[name] = Signal.like(port.data, name=f"{name}_rdata")
            m.d.sync += rdata[name].eq(port.data)

        m.submodules.host = host = HostController(p)
        wiring.connect(m, wiring.flipped(self.cmd), host.cmd)
        wiring.connect(m, host.rsp, wiring.flipped(self.rsp))
        if p.linked:
            m.d.comb += self.abort.eq(host.abort)

        def abortable(name, component):
            """``component`` as submodule ``name``, reset to idle by ABORT."""
            m.submodules[name] = ResetInserter(host.abort)(component)
            return component

        fp = abortable("fp", ForwardEngine(p))
        bp = abortable("bp", BackwardEngine(p))
        upd = abortable("upd", UpdateEngine(p))
        if fused:
            wg = None
            m.d.comb += host.wg_busy.eq(0)
        else:
            wg = abortable("wg", GradientEngine(p))
            m.d.comb += [
                wg.start.eq(host.wg_start),
                host.wg_busy.eq(wg.busy),
                wg.ready.eq(bp.ready),
            ]
        m.d.comb += [
            fp.start.eq(host.fp_start),
            bp.start.eq(host.bp_start),
            upd.start.eq(host.upd_start),
            host.fp_busy.eq(fp.busy),
            host.bp_busy.eq(bp.busy),
            host.upd_busy.eq(upd.busy),
            host.lane_work.eq(fp.lane_work),
            bp.label.eq(host.label),
            bp.ext_error.eq(host.ext_error),
            upd.u_sel.eq(host.u_sel),
        ]
        for name in readable_memories(p):
            m.d.comb += getattr(host, f"rd_{name}").eq(rdata[name])

        def word_en(spec, wen, lane_sel=None):
            """Byte-lane style enables: every lane, or only ``lane_sel``."""
            full = Const((1 << spec.lanes) - 1, spec.lanes)
            if lane_sel is None:
                return Mux(wen, full, 0)
            return Mux(wen, (Const(1, spec.lanes) << lane_sel)[: spec.lanes], 0)

        def replicate(spec, value):
            return Cat(*[value[: spec.width] for _ in range(spec.lanes)])

        # -- port multiplexing -------------------------------------------------------------------
        live = {}  # per read port: the read the block RAM sees this cycle is used

        def rsel(name, *owners, base=None):
            """Drive read port ``name``'s address from the first busy owner (an engine and its
            port prefix), else the host; ``base`` (the event bank's first word) is added to the
            owners' addresses. The port's live-read strobe follows the same choice."""
            port = rd[name]
            expr = host.raddr
            ren = getattr(host, f"ren_{name}", Const(0))
            for engine, pre in reversed(owners):
                addr = getattr(engine, f"{pre}_raddr")
                expr = Mux(engine.busy, addr if base is None else base + addr, expr)
                ren = Mux(engine.busy, getattr(engine, f"{pre}_ren"), ren)
            m.d.sync += port.addr.eq(expr)  # registered: the block RAM sees it a cycle later
            live[name] = Signal(name=f"{name}_live")
            m.d.sync += live[name].eq(ren)

        rsel("weights", (fp, "w"), (bp, "w"), (upd, "w"))
        rsel("membranes", (fp, "u"), (bp, "u"))
        rsel("counts", (fp, "cnt"), (bp, "cnt"))
        rsel("deltas", (bp, "d"), *([(upd, "d")] if fused else []))
        rsel("errors", (bp, "err"))
        rsel("nonzero", *([(bp, "nz")] if p.emits_error else []))
        if fused:
            rsel("mask", (upd, "mk"))
        else:
            rsel("grads", (wg, "gr"), (upd, "gr"))
        gather = upd if fused else wg  # who reads the events besides FP
        rsel("lfsr", (upd, "lf"))
        bank = host.bank if p.loads_spikes else Const(0)
        if p.loads_spikes:
            # FORWARD reads the bank it started on: the spare one, being loaded, when it is
            # streamed with LOAD_SPIKES (the load flips the banks when it is done). The fused
            # update builds its mask from the events FORWARD used, even if a LOAD_SPIKES
            # between BACKWARD and UPDATE has flipped the banks since.
            fwd_bank = Signal(name="fwd_bank")
            fwd_streamed = Signal(name="fwd_streamed")
            with m.If(host.fp_start):
                m.d.sync += [fwd_bank.eq(host.bank ^ host.fp_spare), fwd_streamed.eq(host.fp_spare)]
            bank = Mux(fp.busy | (upd.busy if fused else 0), fwd_bank, host.bank)
        events, heads = Mux(bank, p.timesteps * p.n_in, 0), Mux(bank, p.timesteps, 0)
        rsel("events", (fp, "ev"), (gather, "ev"), base=events)
        rsel("event_heads", (fp, "hdr"), (gather, "hdr"), base=heads)
        if p.emits_error:
            rsel("eprev")
        for name, pre in [("deltas_b", "d"), ("nonzero_b", "nz")] if not fused else []:
            m.d.sync += second[name].addr.eq(getattr(wg, f"{pre}_raddr"))
            live[name] = Signal(name=f"{name}_live")
            m.d.sync += live[name].eq(wg.busy & getattr(wg, f"{pre}_ren"))

        m.d.comb += [
            fp.w_rdata.eq(rdata["weights"]),
            bp.w_rdata.eq(rdata["weights"]),
            upd.w_rdata.eq(rdata["weights"]),
            fp.u_rdata.eq(rdata["membranes"]),
            bp.u_rdata.eq(rdata["membranes"]),
            fp.cnt_rdata.eq(rdata["counts"]),
            bp.cnt_rdata.eq(rdata["counts"]),
            bp.d_rdata.eq(rdata["deltas"]),
            bp.err_rdata.eq(rdata["errors"]),
            upd.lf_rdata.eq(rdata["lfsr"]),
            fp.ev_rdata.eq(rdata["events"]),
            gather.ev_rdata.eq(rdata["events"]),
            fp.hdr_rdata.eq(rdata["event_heads"]),
            gather.hdr_rdata.eq(rdata["event_heads"]),
        ]
        if fused:
            m.d.comb += [upd.d_rdata.eq(rdata["deltas"]), upd.mk_rdata.eq(rdata["mask"])]
        else:
            m.d.comb += [
                wg.d_rdata.eq(rdata["deltas_b"]),
                wg.nz_rdata.eq(rdata["nonzero_b"]),
                wg.gr_rdata.eq(rdata["grads"]),
                upd.gr_rdata.eq(rdata["grads"]),
            ]

        def wport(name, addr, data, en):
            # Registered like the read addresses, so reads and writes keep their order.
            m.d.sync += [wr[name].addr.eq(addr), wr[name].data.eq(data), wr[name].en.eq(en)]

        # Engine-owned writes.
        wport("membranes", fp.u_waddr, fp.u_wdata, word_en(specs["membranes"], fp.u_wen))
        wport("counts", fp.cnt_waddr, fp.cnt_wdata, word_en(specs["counts"], fp.cnt_wen))
        wport("deltas", bp.d_waddr, bp.d_wdata, word_en(specs["deltas"], bp.d_wen))
        wport("nonzero", bp.nz_waddr, bp.nz_wdata, word_en(specs["nonzero"], bp.nz_wen))
        if p.emits_error:
            m.d.comb += bp.nz_rdata.eq(rdata["nonzero"])
        if p.emits_error:
            wport("eprev", bp.ep_waddr, bp.ep_wdata, word_en(specs["eprev"], bp.ep_wen))
        # Input events: from the link during FORWARD (a linked core of a layer > 0), else from
        # LOAD_SPIKES into the spare bank.
        events_from = abortable("spk_rx", SpikeReceiver(p)) if p.spikes_in else host
        all_events = p.timesteps * p.n_in
        if p.spikes_in:
            wiring.connect(m, wiring.flipped(self.spk_i), events_from.i)
            m.d.comb += [events_from.arm.eq(host.fp_start), fp.avail.eq(events_from.avail)]
            m.d.comb += fp.ev_avail.eq(all_events)
        else:
            # A FORWARD streamed with its LOAD_SPIKES reads a timestep's header once it is
            # written and each event once the loader has written (and checked) it; any other
            # FORWARD, all of them at once.
            m.d.comb += [
                fp.avail.eq(host.fp_avail),
                fp.ev_avail.eq(Mux(fwd_streamed, host.fp_written, all_events)),
            ]
        for name, pre in [("events", "ev"), ("event_heads", "hdr")]:
            wport(name, *(getattr(events_from, f"{pre}_{x}") for x in ("waddr", "wdata", "wen")))
        if p.spikes_out:
            stx = abortable("spk_tx", SpikeEmitter(p, margin=FP_IN_FLIGHT + 2))
            wiring.connect(m, stx.o, wiring.flipped(self.spk_o))
            m.d.comb += [
                stx.push.eq(fp.spk_push),
                stx.mask.eq(fp.spk_mask),
                stx.group.eq(fp.spk_group),
                stx.last.eq(fp.spk_last),
                fp.spk_room.eq(stx.room),
            ]
        if p.errors_out:
            etx = abortable("err_tx", ErrorEmitter(p, margin=bp_error_drain(P) + 2))
            wiring.connect(m, etx.o, wiring.flipped(self.err_o))
            m.d.comb += [
                etx.push.eq(bp.ep_wen),
                etx.value.eq(bp.ep_wdata),
                bp.ep_room.eq(etx.room),
            ]

        def shared_wport(name, host_wen, *owners):
            """A write port driven by the first busy owner ``(busy, addr, data, wen)`` (whole
            words), else by the host (one lane of the word at ``host.waddr``)."""
            spec = specs[name]
            addr, data = host.waddr, replicate(spec, host.wdata)
            en = word_en(spec, host_wen, host.wlane)
            for busy, o_addr, o_data, o_wen in reversed(owners):
                addr, data = Mux(busy, o_addr, addr), Mux(busy, o_data, data)
                en = Mux(busy, word_en(spec, o_wen), en)
            wport(name, addr, data, en)

        if specs["weights"].packed:
            # A host WRITE's value replaces one lane of the word the walker's address read:
            # that word arrives READ_LATENCY after the walker's step, the value STAGE_LATENCY.
            spec = specs["weights"]
            late = READ_LATENCY - STAGE_LATENCY
            h_wen, h_addr, h_lane, h_data = (
                delay_line(m, sig, late, f"rmw_{sig.name}")[-1]
                for sig in (host.wen_weights, host.waddr, host.wlane, host.wdata)
            )
            old = rdata["weights"]
            merged = Cat(
                *(
                    Mux(
                        h_lane == q,
                        h_data[: spec.width],
                        old[q * spec.width : (q + 1) * spec.width],
                    )
                    for q in range(spec.lanes)
                )
            )
            wport(
                "weights",
                Mux(upd.busy, upd.w_waddr, h_addr),
                Mux(upd.busy, upd.w_wdata, merged),
                Mux(upd.busy, upd.w_wen, h_wen),
            )
        else:
            shared_wport(
                "weights", host.wen_weights, (upd.busy, upd.w_waddr, upd.w_wdata, upd.w_wen)
            )
        if fused:
            wport("mask", upd.mk_waddr, upd.mk_wdata, word_en(specs["mask"], upd.mk_wen))
        else:
            shared_wport(
                "grads",
                host.wen_grads,
                (wg.busy, wg.gr_waddr, wg.gr_wdata, wg.gr_wen),
                (upd.busy, upd.gr_waddr, 0, upd.gr_wen),  # the update clears what it applied
            )
        shared_wport("lfsr", host.wen_lfsr, (upd.busy, upd.lf_waddr, upd.lf_wdata, upd.lf_wen))
        if p.errors_in:
            # The external error from the link (during BACKWARD) or from WRITE (never both).
            erx = abortable("err_rx", ErrorReceiver(p))
            wiring.connect(m, wiring.flipped(self.err_i), erx.i)
            m.d.comb += [erx.arm.eq(host.bp_start & host.ext_error), bp.err_avail.eq(erx.avail)]
            spec = specs["errors"]
            use = erx.wen
            wport(
                "errors",
                Mux(use, erx.addr, host.waddr),
                Mux(use, replicate(spec, erx.data), replicate(spec, host.wdata)),
                Mux(use, word_en(spec, use, erx.lane), word_en(spec, host.wen_errors, host.wlane)),
            )
        else:
            shared_wport("errors", host.wen_errors)

        if rw_check.enabled():
            checks = rw_check.RwChecks(m, "core")
            for name, port in [*rd.items(), *second.items()]:
                w = wr[name.removesuffix("_b")]
                checks.memory(name, port.addr, live[name], w.addr, w.en)
            checks.count(self.rw_checked, host.rw_checked)
        return m
