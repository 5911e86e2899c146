"""The fast transactors' parts: stream files, settings, the planning and checking passes, and
(under Verilator) the wrapper's deadline and the bare build playing the same stream.

The CI matrix runs the fast transactors against the golden model and against cocotbext-axi
(``tests/test_rtl.py``); ``bench/sim_speed.py`` measures them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from pathlib import Path

import pytest

from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import MAGIC, CoreRules, Opcode, Quantity, Status, command, read_arg
from spikeforge.hw.protocol import status_word as status
from spikeforge.sim import fast_tb, regress
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.checker import Mismatch
from spikeforge.sim.epoch import train_epoch
from spikeforge.sim.plan import ArrayRecorder, ArrayReplayer, PlanDiverged, Recorder, Replayer
from spikeforge.sim.rtl_runner import build_bare, build_fast_core
from spikeforge.sim.scenario import train_and_check
from spikeforge.sim.session import CoreSession
from spikeforge.sw.config import SnnConfig

SMALL = CoreParams(net=SnnConfig(layers=(8, 4), timesteps=4), lanes=2)
BUILD_ROOT = Path(__file__).resolve().parents[1] / "build" / "rtl" / "fast_tb"


def test_command_stream_marks_last_words_answers_and_the_end(tmp_path):
    n = fast_tb.write_commands(tmp_path / "cmd.hex", [([1, 2, 3], 1), ([0xFFFFFFFF], 2)])
    assert n == 5
    lines = [int(v, 16) for v in (tmp_path / "cmd.hex").read_text().split()]
    entries = [fast_tb.CMD_ENTRY.from_bits(v) for v in lines]
    assert [e.data for e in entries] == [1, 2, 3, 0xFFFFFFFF, 0]
    assert [e.last for e in entries] == [0, 0, 1, 1, 0]
    assert [e.answers for e in entries] == [0, 0, 1, 2, 0]
    assert [e.end for e in entries] == [0, 0, 0, 0, 1]


def test_bad_streams_and_settings_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="at least one word"):
        fast_tb.write_commands(tmp_path / "cmd.hex", [([], 1)])
    with pytest.raises(ValueError, match=r"0 \.\. 255 answers, not 256"):
        fast_tb.write_commands(tmp_path / "cmd.hex", [([1], 256)])
    with pytest.raises(ValueError, match=r"lies in \[0, 1\), not 1.0"):
        fast_tb.rate_byte(1.0)
    with pytest.raises(ValueError, match="deadline"):
        fast_tb.FastSettings(deadline=0)
    assert fast_tb.rate_byte(0.3) == 77
    assert fast_tb.FastSettings(seed=0, deadline=10).seed != 0  # xorshift's fixed point


def test_answers_split_into_packets_at_last(tmp_path):
    path = tmp_path / "rsp.hex"
    path.write_text("\n".join(f"{v:09x}" for v in [5, 1 << 32 | 6, 1 << 32 | 7, 8]))
    assert fast_tb.read_answers(path) == [[5, 6], [7], [8]]  # the run stopped inside the last
    assert fast_tb.read_answers(tmp_path / "missing.hex") == []


def test_the_recorder_answers_with_the_cores_lengths():
    rec = Recorder(SMALL)
    rules = CoreRules.of(SMALL)
    words = asyncio.run(rec.call(Opcode.READ, read_arg(Quantity.WEIGHTS)))[0]
    outer, inner = rules.shapes[Quantity.WEIGHTS]
    assert len(words) == outer * inner
    assert len(asyncio.run(rec.call(Opcode.READ, read_arg(Quantity.WEIGHTS, 1, 2)))[0]) == 2 * inner
    assert asyncio.run(rec.call(Opcode.INFO))[0][0] == MAGIC
    assert asyncio.run(rec.call(Opcode.FORWARD)) == ([], Status.OK)
    assert rec.packets[-1] == [command(Opcode.FORWARD)]


def _plan() -> Recorder:
    rec = Recorder(SMALL)
    asyncio.run(
        train_and_check(CoreSession(SMALL, rec.call), seed=1, steps=1, density=0.5, checks=False)
    )
    return rec


def test_the_replayer_refuses_a_command_the_plan_does_not_have():
    rec = _plan()
    answers = [[status(w[0] >> 24, Status.OK)] for w in rec.packets]
    replay = Replayer(rec.packets, answers, "done")
    session = CoreSession(SMALL, replay.call)
    with pytest.raises(PlanDiverged, match=r"command 0: FORWARD\(arg=0x0, 0 words\) was sent"):
        asyncio.run(session.forward())


def test_the_replayer_names_the_command_whose_answer_is_missing():
    rec = _plan()
    replay = Replayer(rec.packets, [], "the wrapper stopped: deadline")
    with pytest.raises(TimeoutError, match=r"no answer to command 0, INFO.*deadline"):
        asyncio.run(replay.call(Opcode.INFO))


def test_a_falsified_answer_fails_the_checking_pass():
    rec = _plan()
    replay = Replayer(rec.packets, [], "done")
    assert not replay.complete
    # the placeholder answers are zeros: checked against the golden model they must fail
    answers = [
        [*rec.placeholder(w[0] >> 24, w[0] & 0xFFFFFF), status(w[0] >> 24, Status.OK)]
        for w in rec.packets
    ]
    replay = Replayer(rec.packets, answers, "done")
    with pytest.raises(AssertionError, match="first mismatch"):
        asyncio.run(train_and_check(CoreSession(SMALL, replay.call), seed=1, steps=1, density=0.5))


@pytest.mark.rtl
def test_the_bare_build_plays_the_stream_and_a_missing_answer_hits_the_deadline(tmp_path):
    """Bare Verilator answers a recorded stream like the wrapper under cocotb answers it (the
    matrix checks those answers); a packet announcing one answer too many ends in the
    deadline, with every answer that did come captured."""
    build_fast_core(SMALL, BUILD_ROOT)  # the wrapper compiles for cocotb too
    binary, _ = build_bare(SMALL, BUILD_ROOT)
    rec = _plan()
    settings = fast_tb.FastSettings(idle=0.3, backpressure=0.3, seed=4, deadline=5000)
    fast_tb.write_commands(tmp_path / "cmd.hex", [(w, 1) for w in rec.packets])
    subprocess.run([binary, *settings.plusargs()], cwd=tmp_path, check=True, capture_output=True)
    done = fast_tb.read_status(tmp_path / "fast.txt")
    answers = fast_tb.read_answers(tmp_path / "rsp.hex")
    assert done["reason"] == "done" and len(answers) == len(rec.packets)
    replay = Replayer(rec.packets, answers, "done")
    asyncio.run(train_and_check(CoreSession(SMALL, replay.call), seed=1, steps=1, density=0.5))
    assert replay.complete

    packets = [(w, 1) for w in rec.packets[:3]]
    packets[1] = (packets[1][0], 2)  # one answer more than the core gives
    fast_tb.write_commands(tmp_path / "cmd.hex", packets)
    subprocess.run([binary, *settings.plusargs()], cwd=tmp_path, check=True, capture_output=True)
    stopped = fast_tb.read_status(tmp_path / "fast.txt")
    assert stopped["reason"] == "deadline"
    assert len(fast_tb.read_answers(tmp_path / "rsp.hex")) == 2  # the third was never sent


def test_the_epoch_plan_draws_every_answer_and_a_wrong_weight_fails_the_check():
    cores = [
        CoreParams.checked(dataclasses.replace(p, linked=True)) for p in regress.digits_cores()
    ]
    plan = ArrayRecorder(cores)
    scenario = {"samples": 4, "test_samples": 2, "checkpoints": 2}
    planned = asyncio.run(
        train_epoch(ArraySession(cores, plan.send, plan.recv, streamed=False), **scenario)
    )
    assert planned["checkpoints"] == [2, 4]
    # per sample 4 packets (SET_LABEL, LOAD_SPIKES, FORWARD, BACKWARD), answered by each core
    # addressed; the placeholder answers read back as zero weights, which the check refuses
    answers = []
    replay = ArrayRecorder(cores)
    for words, n in plan.packets:
        asyncio.run(replay.send(words))
        answers += [asyncio.run(replay.recv()) for _ in range(n)]
    check = ArrayReplayer(plan.packets, answers, "done")
    with pytest.raises(Mismatch, match=r"after sample 2: layer 0 weight \(0, 0\) is 0"):
        asyncio.run(
            train_epoch(
                ArraySession(cores, check.send, check.recv, streamed=False),
                expected=planned["expected"],
                **scenario,
            )
        )
