"""Small datapath helpers shared by the engines: packed lanes, saturation, rounding shifts.

Each mirrors one primitive of docs/arithmetic.md section 1 (``sat``, ``rnd``, ``leak``).
"""

from __future__ import annotations

from amaranth.hdl import Mux, Value, signed
from amaranth.lib import data

READ_LATENCY = 3
"""Cycles from an engine's memory address to its data: a register between the engines' address
multiplexer and the block RAM (writes are registered the same way, so reads and writes keep
their order), the block RAM's registered read, and one more register right at its output
(ECP5 block RAM clock-to-out is ~5.8 ns; logic straight after it does not close 100 MHz)."""

__all__ = [
    "READ_LATENCY",
    "delay_line",
    "drive_write_ports",
    "lane",
    "leak",
    "membrane_lane",
    "membrane_layout",
    "read_port_members",
    "rnd",
    "sat",
    "write_port_members",
]


def index_range(n: int) -> range:
    """Shape of an index ``0 .. n-1`` that is at least 1 bit wide: Amaranth would make
    ``range(1)`` zero bits wide, which Verilator rejects (ASCRANGE on ``[-1:0]``)."""
    return range(max(n, 2))


def read_port_members(prefix: str, spec) -> dict:
    """Signature members of an engine's use of a memory read port: ``{prefix}_raddr`` out,
    ``{prefix}_ren`` out (the read at this address is live: its data will be used -- only the
    read-during-write checks of :mod:`~spikeforge.hw.rw_check` look at it), ``{prefix}_rdata``
    in (the word ``READ_LATENCY`` cycles later)."""
    from amaranth.lib.wiring import In, Out

    return {
        f"{prefix}_raddr": Out(spec.addr_bits),
        f"{prefix}_ren": Out(1),
        f"{prefix}_rdata": In(spec.word_bits),
    }


def write_port_members(prefix: str, spec) -> dict:
    """Signature members of an engine's whole-word writes: address, data, enable."""
    from amaranth.lib.wiring import Out

    return {
        f"{prefix}_waddr": Out(spec.addr_bits),
        f"{prefix}_wdata": Out(spec.word_bits),
        f"{prefix}_wen": Out(1),
    }


def drive_write_ports(m, dst, src, *prefixes: str) -> None:
    """Drive ``dst``'s whole-word writes (:func:`write_port_members`) with ``src``'s, for each
    of ``prefixes`` (in ``comb``; a later assignment in an ``If`` still overrides them)."""
    for prefix in prefixes:
        for port in ("waddr", "wdata", "wen"):
            name = f"{prefix}_{port}"
            m.d.comb += getattr(dst, name).eq(getattr(src, name))


def lane(word: Value, index: int, width: int, *, is_signed: bool = True) -> Value:
    """Field ``index`` of a packed multi-lane word."""
    field = word[index * width : (index + 1) * width]
    return field.as_signed() if is_signed else field


def membrane_layout(v_bits: int) -> data.StructLayout:
    """One lane of the membrane history memory: the membrane ``u[t]`` and the forward engine's
    spike bit ``s[t] = [u[t] >= theta]``, written together. The bit is the one truth of
    ``s[t]``: the forward engine's reset at ``t + 1``, the backward engine's zero-reset term and
    READ SPIKES all use it, none compares again (``MemorySpec`` width ``v_bits + 1``)."""
    return data.StructLayout({"u": signed(v_bits), "s": 1})


def membrane_lane(word: Value, index: int, v_bits: int) -> data.View:
    """Lane ``index`` of a membrane history word, as a :func:`membrane_layout` view."""
    layout = membrane_layout(v_bits)
    return data.View(layout, word.word_select(index, layout.size))


def sat(value: Value, bits: int) -> Value:
    """``sat_bits(value)``: clamp to the signed ``bits``-wide range, never wrap."""
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return Mux(value > hi, hi, Mux(value < lo, lo, value))


def rnd(value: Value, shift: int) -> Value:
    """``rnd(x, s) = (x + 2**(s-1)) >> s`` (nearest, ties toward +inf); ``x`` when ``s == 0``."""
    if shift == 0:
        return value
    return (value + (1 << (shift - 1))) >> shift


def leak(value: Value, k: int) -> Value:
    """``leak_k(x) = x - (x >> k)``."""
    return value - (value >> k)


def delay_line(m, value: Value, cycles: int, name: str) -> list[Value]:
    """``[value, value delayed 1 cycle, ..., delayed cycles]`` (registers in ``sync``)."""
    from amaranth.hdl import Signal

    out = [value]
    for n in range(1, cycles + 1):
        reg = (
            Signal.like(value, name=f"{name}_d{n}")
            if isinstance(value, Signal)
            else Signal(value.shape(), name=f"{name}_d{n}")
        )
        m.d.sync += reg.eq(out[-1])
        out.append(reg)
    return out
