"""Cores side by side on one clock, each behind its own AXI4-Stream host port.

``CoreRack([p0, p1, ...])`` instantiates one :class:`~spikeforge.hw.core.SpikingCore` per entry
and exposes core ``n``'s host port under AXI4-Stream names with the prefix ``c{n}_``
(``c0_s_axis_tdata``, ..., ``c1_m_axis_tlast``; :mod:`spikeforge.hw.axis`). The cores share
nothing but the clock and reset: the host carries spikes forward and errors backward between
them (as the two-core digits regression does). The multi-core array with its own interconnect
is a separate design.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from amaranth.hdl import Module
from amaranth.lib import wiring

from spikeforge.hw.axis import axi_members, connect_axi, connect_others, other_members
from spikeforge.hw.core import SpikingCore
from spikeforge.hw.params import CoreParams

__all__ = ["CoreRack", "check_cores"]


def check_cores(cores: Sequence[CoreParams]) -> tuple[CoreParams, ...]:
    """``cores`` as a tuple after checking each entry (at least one)."""
    cores = tuple(cores)
    if not cores:
        raise ValueError("cores must name at least one CoreParams, not an empty sequence")
    for n, p in enumerate(cores):
        if not isinstance(p, CoreParams):
            raise TypeError(f"cores[{n}] must be a CoreParams, not {p!r}")
        CoreParams.checked(p)
    return cores


class CoreRack(wiring.Component):
    """Independent cores with ports ``c{n}_<core port>``.

    Parameters
    ----------
    cores : sequence of CoreParams
        One entry per core, in port order (at least one).
    """

    def __init__(self, cores: Sequence[CoreParams]):
        self._cores = cores = check_cores(cores)
        self._duts = [SpikingCore(p) for p in cores]
        members = {}
        for n, dut in enumerate(self._duts):
            members |= axi_members(f"c{n}_") | other_members(dut, f"c{n}_")
        super().__init__(members)

    @property
    def cores(self) -> tuple[CoreParams, ...]:
        return self._cores

    @property
    def duts(self) -> tuple[SpikingCore, ...]:
        """The core components, in port order."""
        return tuple(self._duts)

    @property
    def name(self) -> str:
        """Module name of the generated Verilog top."""
        return "spikeforge_rack"

    @property
    def rack_hash(self) -> str:
        """16 hex digits of SHA-256 over the cores' hashes in port order."""
        canonical = json.dumps([p.core_hash for p in self._cores])
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def elaborate(self, platform):
        m = Module()
        for n, dut in enumerate(self._duts):
            m.submodules[f"core{n}"] = dut
            connect_axi(m, self, dut, f"c{n}_")
            connect_others(m, self, dut, f"c{n}_")
        return m
