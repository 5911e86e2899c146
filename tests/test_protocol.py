"""The protocol's one definition: word layouts, encoders, and the rules a core checks packets by.

The rules (:class:`~spikeforge.hw.protocol.CoreRules`) answer in software what the hardware
framer answers; here they are checked against hand-worked packets, and each argument rule is
evaluated in Amaranth's simulator to show the same object gives the same answer in hardware.
"""

from __future__ import annotations

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    ARRAY_TAG,
    LOAD_FORWARD,
    ROUTE,
    ArrayRules,
    CommandWord,
    CoreRules,
    Opcode,
    Quantity,
    RouteWord,
    Status,
    array_route,
    command,
    parse_status,
    route,
    spike_words,
    status_core,
    status_word,
)
from spikeforge.sw.config import SnnConfig

NET = SnnConfig(layers=(6, 4, 2), timesteps=3)
CORE = CoreParams(net=NET, layer=0, lanes=2, emit_error=True, write_buffer=8)
RULES = CoreRules.of(CORE)


def test_words_encode_and_decode_through_the_layouts():
    word = command(Opcode.WRITE, 0x12345)
    assert word == 0x01012345
    view = CommandWord.from_bits(word)
    assert (view.opcode, view.arg) == (Opcode.WRITE, 0x12345)
    assert route(3, 5) == ROUTE << 24 | 3 << 12 | 5
    assert (RouteWord.from_bits(route(3, 5)).first, RouteWord.from_bits(route(3, 5)).count) == (
        3,
        5,
    )
    assert array_route() == ROUTE << 24
    status = status_word(Opcode.FORWARD, Status.TIMEOUT, 7)
    assert parse_status(status) == (Opcode.FORWARD, Status.TIMEOUT)
    assert status_core(status) == 7
    assert status_core(status_word(0xF0, Status.BAD_ARG, ARRAY_TAG)) == ARRAY_TAG


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: command(256), "opcode = 256"),
        (lambda: command(Opcode.INFO, 1 << 24), "arg = 16777216"),
        (lambda: route(4096), "out of range"),
        (lambda: route(0, 0), "at least one core"),
        (lambda: route(4000, 100), "out of range"),
    ],
)
def test_encoders_refuse_what_does_not_fit_a_word(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def _write(q: Quantity, row: int, n: int, value: int = 1) -> list[int]:
    return [command(Opcode.WRITE, int(q) | row << 4), *[value & 0xFFFFFFFF] * n]


@pytest.mark.parametrize(
    ("words", "status"),
    [
        ([command(Opcode.INFO)], Status.OK),
        ([command(Opcode.INFO, 1)], Status.BAD_ARG),
        ([command(Opcode.INFO), 0], Status.BAD_LENGTH),
        ([command(0x3F)], Status.BAD_OPCODE),
        ([command(Opcode.SET_TIMEOUT), 5], Status.BAD_OPCODE),  # the array's, not a core's
        ([command(Opcode.FORWARD, 2)], Status.BAD_ARG),
        ([command(Opcode.BACKWARD, 3)], Status.OK),
        ([command(Opcode.BACKWARD, 7)], Status.OK),
        ([command(Opcode.BACKWARD, 8)], Status.BAD_ARG),
        ([command(Opcode.SET_LABEL, 3)], Status.OK),
        ([command(Opcode.SET_LABEL, 4)], Status.BAD_ARG),
        ([command(Opcode.SET_LR, NET.lr_shift - 1)], Status.BAD_ARG),
        ([command(Opcode.SET_LR, NET.lr_shift + 3)], Status.OK),
        ([command(Opcode.READ, int(Quantity.EPREV))], Status.OK),
        ([command(Opcode.READ, int(Quantity.WEIGHTS) | 1 << 4)], Status.OK),  # rows 1..3
        ([command(Opcode.READ, int(Quantity.WEIGHTS) | 1 << 4 | 3 << 17)], Status.OK),
        ([command(Opcode.READ, int(Quantity.WEIGHTS) | 1 << 4 | 4 << 17)], Status.BAD_ARG),
        ([command(Opcode.READ, int(Quantity.WEIGHTS) | 4 << 4)], Status.BAD_ARG),  # 4 rows
        ([command(Opcode.READ, int(Quantity.SPIKES) | 2 << 4 | 1 << 17)], Status.OK),  # t = 2
        ([command(Opcode.READ, 9)], Status.BAD_ARG),
        ([command(Opcode.ABORT)], Status.OK),
        # WRITE: 8 values per packet, whole rows of 6 (weights) or 4 (errors) values
        (_write(Quantity.WEIGHTS, 0, 6), Status.OK),
        (_write(Quantity.WEIGHTS, 3, 6), Status.OK),
        (_write(Quantity.WEIGHTS, 4, 6), Status.BAD_ARG),  # 4 rows only
        (_write(Quantity.WEIGHTS, 0, 5), Status.BAD_LENGTH),
        (_write(Quantity.WEIGHTS, 0, 7), Status.BAD_LENGTH),
        (_write(Quantity.WEIGHTS, 0, 6, 1 << 20), Status.OUT_OF_RANGE),
        (_write(Quantity.ERRORS, 0, 8, -3), Status.OK),  # two rows of T x n_out
        (_write(Quantity.ERRORS, 2, 4), Status.OK),  # the last row alone
        (_write(Quantity.ERRORS, 0, 4), Status.OK),  # fewer rows than the buffer holds
        (_write(Quantity.ERRORS, 2, 8), Status.BAD_LENGTH),  # past the last row
        (_write(Quantity.ERRORS, 0, 6), Status.BAD_LENGTH),  # not whole rows
        (_write(Quantity.LFSR, 0, 4, 0), Status.OUT_OF_RANGE),  # a zero LFSR state becomes 1
        (_write(Quantity.MEMBRANES, 0, 8), Status.BAD_ARG),  # not writable
        ([command(Opcode.WRITE, int(Quantity.WEIGHTS))], Status.BAD_LENGTH),
        # LOAD_SPIKES: T = 3 timesteps, 6 inputs
        ([command(Opcode.LOAD_SPIKES), *spike_words([[1, 0, 1, 0, 0, 0]] * 3)], Status.OK),
        ([command(Opcode.LOAD_SPIKES), 0, 0, 0], Status.OK),
        ([command(Opcode.LOAD_SPIKES), 0, 0], Status.BAD_LENGTH),
        ([command(Opcode.LOAD_SPIKES), 0, 0, 0, 0], Status.BAD_LENGTH),
        ([command(Opcode.LOAD_SPIKES), 7, 0, 0], Status.BAD_SPIKES),  # more than 6 inputs
        ([command(Opcode.LOAD_SPIKES), 1 << 24, 0, 0], Status.BAD_SPIKES),  # reserved bits
        ([command(Opcode.LOAD_SPIKES), 2, 3, 3, 0, 0], Status.BAD_SPIKES),  # not ascending
        ([command(Opcode.LOAD_SPIKES), 1, 6, 0, 0], Status.BAD_SPIKES),  # index out of range
        ([command(Opcode.LOAD_SPIKES), 2, 1], Status.BAD_LENGTH),  # ends inside t = 0
        ([command(Opcode.LOAD_SPIKES, LOAD_FORWARD), 0, 0, 0], Status.OK),  # FORWARD streamed
        ([command(Opcode.LOAD_SPIKES, 2), 0, 0, 0], Status.BAD_ARG),
    ],
)
def test_the_rules_give_the_status_a_packet_draws(words, status):
    assert RULES.status(words) == status


def test_an_abandoned_packet_is_rejected_whatever_it_holds():
    assert RULES.status([command(Opcode.INFO)], abandoned=True) == Status.BAD_LENGTH


def test_a_core_fed_by_a_spike_link_has_no_load_spikes():
    linked = CoreParams(net=NET, layer=1, lanes=2, linked=True)
    rules = CoreRules.of(linked)
    assert Opcode.LOAD_SPIKES not in rules.commands
    assert rules.status([command(Opcode.LOAD_SPIKES), 0, 0, 0]) == Status.BAD_OPCODE


def test_write_chunks_cover_every_value_once_in_whole_rows():
    values = list(range(4 * 6))
    chunks = RULES.write_chunks(Quantity.WEIGHTS, values)
    assert [arg >> 4 for arg, _ in chunks] == [0, 1, 2, 3]  # 8 values: one row of 6 each
    assert [v for _, payload in chunks for v in payload] == values
    errors = RULES.write_chunks(Quantity.ERRORS, [-1] * 12)
    assert [(arg >> 4, len(p)) for arg, p in errors] == [(0, 8), (2, 4)]
    assert all(RULES.status([command(Opcode.WRITE, a), *p]) == Status.OK for a, p in errors)
    with pytest.raises(ValueError, match="WEIGHTS has 24 values, not 23"):
        RULES.write_chunks(Quantity.WEIGHTS, values[:-1])
    short = RULES.write_chunks(Quantity.ERRORS, list(range(12)), max_rows=1)
    assert [(arg >> 4, p) for arg, p in short] == [
        (0, [0, 1, 2, 3]),
        (1, [4, 5, 6, 7]),
        (2, [8, 9, 10, 11]),
    ]
    with pytest.raises(ValueError, match="max_rows must be an int >= 1"):
        RULES.write_chunks(Quantity.ERRORS, list(range(12)), max_rows=0)


def test_read_chunks_cover_every_row_once():
    assert RULES.read_chunks(Quantity.WEIGHTS) == [(int(Quantity.WEIGHTS), 4)]
    chunks = RULES.read_chunks(Quantity.WEIGHTS, max_rows=3)
    assert chunks == [(0 << 4 | 3 << 17, 3), (3 << 4 | 1 << 17, 1)]
    assert all(RULES.status([command(Opcode.READ, a)]) == Status.OK for a, _ in chunks)


def test_the_write_buffer_holds_at_least_one_row():
    big = SnnConfig(layers=(600, 4), timesteps=2)
    assert CoreParams(net=big, lanes=2).write_buffer == 600
    assert CoreParams(net=NET, lanes=2).write_buffer == 24  # the largest writable quantity
    with pytest.raises(ValueError, match="write_buffer = 5 is out of range"):
        CoreParams(net=NET, lanes=2, write_buffer=5)


@pytest.mark.parametrize(
    ("words", "status"),
    [
        ([route(0, 3), command(Opcode.INFO)], None),  # to the cores
        ([route(0, 4), command(Opcode.INFO)], Status.BAD_ARG),  # past the array
        ([0x12 << 24 | 1, command(Opcode.INFO)], Status.BAD_ARG),
        ([ROUTE << 24 | 1 << 12, command(Opcode.INFO)], Status.BAD_ARG),  # count 0, first 1
        ([route(1)], Status.BAD_LENGTH),  # a route word alone
        ([array_route()], Status.BAD_LENGTH),
        ([array_route(), command(Opcode.INFO)], Status.OK),
        ([array_route(), command(Opcode.INFO, 1)], Status.BAD_ARG),
        ([array_route(), command(Opcode.SET_TIMEOUT), 100], Status.OK),
        ([array_route(), command(Opcode.SET_TIMEOUT)], Status.BAD_LENGTH),
        ([array_route(), command(Opcode.SET_TIMEOUT), 1, 2], Status.BAD_LENGTH),
        ([array_route(), command(Opcode.FORWARD)], Status.BAD_OPCODE),
    ],
)
def test_the_array_rules_give_the_arrays_own_answers(words, status):
    assert ArrayRules(3).status(words) == status


def test_each_argument_rule_answers_the_same_in_hardware():
    """``spec.arg.ok`` built into a circuit, swept over arguments near every bound, agrees with
    ``spec.arg.ok`` evaluated on ints: the framer and :meth:`CoreRules.status` share it."""
    arg = Signal(24)
    m = Module()
    outs = {op: Signal(name=f"ok_{op.name}") for op in RULES.commands}
    for op, spec in RULES.commands.items():
        m.d.comb += outs[op].eq(spec.arg.ok(arg))
    probes = sorted(
        {
            v
            for d in range(-2, 3)
            for base in (0, 1, 4, 8, 16, 32, 48, 64, 1 << 20)
            for v in (base + d, (base + d) << 4 | 5, NET.lr_shift + d)
            if 0 <= v < 1 << 24
        }
    )
    sim = Simulator(m)
    mismatches = []

    async def bench(ctx):
        for value in probes:
            ctx.set(arg, value)
            for op, spec in RULES.commands.items():
                if bool(ctx.get(outs[op])) != bool(spec.arg.ok(value)):
                    mismatches.append((op.name, value))

    sim.add_testbench(bench)
    sim.run()
    assert not mismatches
    assert len(probes) > 50
