"""Read-during-write checks of the memories synthesized without read-during-write logic.

Every block RAM of the design is synthesized with ``synth_ecp5 -no-rw-check`` (docs/core.md,
"Read-during-write"): a read of the address written in the same cycle returns an undefined word
on the FPGA, while the simulated Verilog returns the old one. That is safe only if no such read
is ever *used*. Each checked memory therefore carries, in every simulation build, an
``Assert`` that fails the run on the first cycle a **live** read (one whose data its reader
uses) and a write meet at one address::

    read-during-write: memory weights, address 17, cycle 4242

(Amaranth's simulator raises ``AssertionError``; Verilator, built with ``--assert``, stops.)
A reader says which of its reads are live with a ``*_ren`` strobe beside its address
(:func:`~spikeforge.hw.datapath.read_port_members`); the owner of the memory registers it with
the address, so the check compares exactly what the block RAM sees in one cycle.

A component that carries checks counts its **checked accesses** (cycles with a live read and a
write on one memory, each memory counted) in ``rw_checked``, read by the testbenches at the end
of a run. Synthesis builds leave all of it out (:func:`disabled`): the generated Verilog for
Yosys has no assertion, no counter and no extra port.

Amaranth's own FIFOs (the response FIFO, the link FIFOs) are not checked here: they only read
occupied entries and never write one, which the formal proofs cover (``make formal``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from amaranth.hdl import Assert, Format, Module, Signal, Value
from amaranth.lib.wiring import Out

__all__ = ["COUNT_BITS", "RwChecks", "disabled", "enabled", "members"]

COUNT_BITS = 32
"""Width of the ``rw_checked`` counters and of the cycle number in the messages."""

_ENABLED: ContextVar[bool] = ContextVar("spikeforge_rw_checks", default=True)


def enabled() -> bool:
    """Whether components built now carry the checks (everywhere but in :func:`disabled`)."""
    return _ENABLED.get()


@contextmanager
def disabled() -> Iterator[None]:
    """Build and convert components without the checks (synthesis)::

    with rw_check.disabled():
        text = verilog.convert(AxiStreamTop(SpikingCore(params)))
    """
    token = _ENABLED.set(False)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def members() -> dict:
    """The ``rw_checked`` output of a component that carries checks (none in synthesis)."""
    return {"rw_checked": Out(COUNT_BITS)} if enabled() else {}


class RwChecks:
    """The checks of one component's memories, built into its module ``m``.

    ``checks.memory(name, read_addr, live, write_addr, write_en)`` adds one memory's check
    (``live`` and ``write_en`` are the values the memory sees this cycle; ``write_en`` may be a
    lane mask); ``checks.count(out)`` drives ``out`` with the running count of checked accesses,
    plus any ``extra`` counts of subcomponents.
    """

    def __init__(self, m: Module, owner: str):
        self._m = m
        self._owner = owner
        self._hits: list[Value] = []
        self.cycle = Signal(COUNT_BITS, name=f"{owner}_rw_cycle")
        m.d.sync += self.cycle.eq(self.cycle + 1)

    def memory(self, name: str, read_addr: Value, live: Value, write_addr: Value, write_en):
        hit = Signal(name=f"rw_hit_{name}")
        self._m.d.comb += hit.eq(live & write_en.any())
        same = hit & (read_addr == write_addr)
        message = Format(
            f"read-during-write: memory {self._owner}.{name}, address {{}}, cycle {{}}",
            read_addr,
            self.cycle,
        )
        self._m.d.sync += Assert(~same, message)
        self._hits.append(hit)

    def count(self, out: Value, *extra: Value) -> None:
        """``out`` counts this component's checked accesses, plus ``extra`` (other counters)."""
        total = Signal(COUNT_BITS, name=f"{self._owner}_rw_count")
        step = sum(self._hits, start=Value.cast(0))
        self._m.d.sync += total.eq(total + step)
        self._m.d.comb += out.eq(sum(extra, start=total))
