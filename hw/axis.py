"""AXI4-Stream names for a host port, at the generated top only.

Inside spikeforge a host port is two :mod:`amaranth.lib.stream` streams, ``cmd`` (words of
:data:`~spikeforge.hw.protocol.CommandBeat`) and ``rsp``
(:data:`~spikeforge.hw.protocol.ResponseBeat`). Tools outside -- cocotbext-axi, vendor IP
integrators -- recognise AXI4-Stream names, so the generated top renames them, and nothing
else does::

    s_axis_tdata/tvalid/tready/tlast  ->  cmd.payload.data / valid / ready / payload.last
    m_axis_tdata/tvalid/tready/tlast  <-  rsp.payload.data / valid / ready / payload.last

``cmd.payload.abandon`` is held low: a host on the AXI port ends packets with ``tlast`` only.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from spikeforge.hw.protocol import BUS_BITS

__all__ = [
    "INNER",
    "AxiStreamTop",
    "axi_members",
    "connect_axi",
    "connect_others",
    "other_members",
]

HOST_PORT = ("cmd", "rsp")
INNER = "inner"
"""Submodule name of the wrapped core or array: its Verilog modules are ``<top>.inner.*``."""


def axi_members(prefix: str = "") -> dict:
    """The AXI4-Stream host port: ``{prefix}s_axis_*`` in, ``{prefix}m_axis_*`` out."""
    return {
        f"{prefix}s_axis_tdata": In(BUS_BITS),
        f"{prefix}s_axis_tvalid": In(1),
        f"{prefix}s_axis_tready": Out(1),
        f"{prefix}s_axis_tlast": In(1),
        f"{prefix}m_axis_tdata": Out(BUS_BITS),
        f"{prefix}m_axis_tvalid": Out(1),
        f"{prefix}m_axis_tready": In(1),
        f"{prefix}m_axis_tlast": Out(1),
    }


def connect_axi(m: Module, top, inner, prefix: str = "") -> None:
    """Wire ``top``'s ``{prefix}s_axis_*``/``{prefix}m_axis_*`` to ``inner.cmd``/``inner.rsp``."""

    def port(name):
        return getattr(top, f"{prefix}{name}")

    m.d.comb += [
        inner.cmd.payload.data.eq(port("s_axis_tdata")),
        inner.cmd.payload.last.eq(port("s_axis_tlast")),
        inner.cmd.payload.abandon.eq(0),
        inner.cmd.valid.eq(port("s_axis_tvalid")),
        port("s_axis_tready").eq(inner.cmd.ready),
        port("m_axis_tdata").eq(inner.rsp.payload.data),
        port("m_axis_tlast").eq(inner.rsp.payload.last),
        port("m_axis_tvalid").eq(inner.rsp.valid),
        inner.rsp.ready.eq(port("m_axis_tready")),
    ]


def other_members(inner, prefix: str = "") -> dict:
    """Every member of ``inner``'s signature but the host port, under ``prefix``."""
    return {
        f"{prefix}{name}": member
        for name, member in inner.signature.members.items()
        if name not in HOST_PORT
    }


def connect_others(m: Module, top, inner, prefix: str = "") -> None:
    """Wire every member of :func:`other_members` through, unchanged."""
    for name, member in inner.signature.members.items():
        if name in HOST_PORT:
            continue
        outer = getattr(top, f"{prefix}{name}")
        inside = getattr(inner, name)
        if member.is_signature:
            if member.flow == In:
                wiring.connect(m, wiring.flipped(outer), inside)
            else:
                wiring.connect(m, inside, wiring.flipped(outer))
        elif member.flow == In:
            m.d.comb += inside.eq(outer)
        else:
            m.d.comb += outer.eq(inside)


class AxiStreamTop(wiring.Component):
    """A generated top: ``inner`` (a core or an array) with its host port under AXI4-Stream
    names and every other port unchanged."""

    def __init__(self, inner: wiring.Component):
        if not all(name in inner.signature.members for name in HOST_PORT):
            raise TypeError(f"{inner!r} has no host port (members {', '.join(HOST_PORT)})")
        self._inner = inner
        super().__init__({**axi_members(), **other_members(inner)})

    @property
    def inner(self) -> wiring.Component:
        return self._inner

    def elaborate(self, platform):
        m = Module()
        m.submodules[INNER] = self._inner
        connect_axi(m, self, self._inner)
        connect_others(m, self, self._inner)
        return m
