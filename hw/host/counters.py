"""The cycle counters a core reports with COUNTERS (:data:`~spikeforge.hw.protocol.COUNTERS`).

``forward`` and ``lanes_busy`` count the last FORWARD: cycles with the FP engine busy and cycles
with a token entering the lanes. ``bp``, ``wg``, ``update`` and ``backward`` count the last
BACKWARD: each engine's busy cycles and the whole command (``in_backward``). A command clears
its counters when it starts; ABORT keeps them (they show the cycles until the abort).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.protocol import BUS_BITS, COUNTERS

__all__ = ["CycleCounters"]


class CycleCounters(wiring.Component):
    """32-bit cycle counters; ``clear_forward``, ``clear_backward``, ``clear_update`` restart
    them, ``select`` picks the one on ``value`` (in :data:`COUNTERS` order)."""

    def __init__(self):
        super().__init__(
            {
                "fp_busy": In(1),
                "lane_work": In(1),
                "bp_busy": In(1),
                "wg_busy": In(1),
                "upd_busy": In(1),
                "in_backward": In(1),
                "clear_forward": In(1),
                "clear_backward": In(1),
                "clear_update": In(1),
                "select": In(range(len(COUNTERS))),
                "value": Out(BUS_BITS),
            }
        )

    def elaborate(self, platform):
        m = Module()
        inputs = {
            "forward": (self.fp_busy, self.clear_forward),
            "lanes_busy": (self.lane_work, self.clear_forward),
            "bp": (self.bp_busy, self.clear_backward),
            "wg": (self.wg_busy, self.clear_backward),
            "update": (self.upd_busy, self.clear_backward | self.clear_update),
            "backward": (self.in_backward, self.clear_backward),
        }
        counts = []
        for name in COUNTERS:
            busy, clear = inputs[name]
            count = Signal(BUS_BITS, name=f"cyc_{name}")
            with m.If(clear):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(count + busy)
            counts.append(count)
        with m.Switch(self.select):
            for n, count in enumerate(counts):
                with m.Case(n):
                    m.d.comb += self.value.eq(count)
        return m
