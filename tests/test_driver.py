"""The driver over pyserial, on a virtual board (a pseudo-terminal, the core in Amaranth's
simulator behind the serial link): training bit-exact, on a clean line and on a damaged one."""

from __future__ import annotations

import json

import pytest
import torch

from spikeforge.board_train import train_on_board
from spikeforge.cli import main
from spikeforge.driver import Board
from spikeforge.hw.params import CoreParams
from spikeforge.sim.serial_sim import LineErrors
from spikeforge.sim.session import CoreError
from spikeforge.sim.virtual_board import VirtualBoard
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.golden import GoldenModel

NET = SnnConfig(layers=(12, 6), timesteps=3)
CORE = CoreParams(net=NET, lanes=2)


def _data(n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    xs = [(torch.rand(NET.timesteps, 12, generator=gen) < 0.5).long() for _ in range(n)]
    ys = [int(torch.randint(0, 6, (1,), generator=gen)) for _ in range(n)]
    return xs, ys


def _train_and_check(errors: LineErrors | None, samples: int, seed: int, timeout: float):
    xs, ys = _data(samples + 3, seed)
    golden = GoldenModel(NET)
    start = golden.state_dict()["weights"][0]
    vb = VirtualBoard(CORE, errors=errors)
    with (
        vb,
        Board.open(vb.path, CORE, timeout=timeout, retries=20, byte_time=vb.byte_time) as board,
    ):
        board.load_weights(start)
        assert board.train(xs[:samples], ys[:samples]) == samples
        weights = board.read_weights()
        predictions = [board.predict(x) for x in xs[samples:]]
        stats = board.link.stats
    for x, y in zip(xs[:samples], ys[:samples], strict=True):
        golden.train_step(x.unsqueeze(0), labels=torch.tensor([y]))
    assert torch.equal(weights, golden.weights[0])
    assert predictions == golden.predict(torch.stack(xs[samples:])).tolist()
    return stats, vb.counters


def test_the_driver_trains_a_virtual_board_bit_exact():
    """(A loaded machine may make the host send a command again: harmless, so not counted.)"""
    stats, counters = _train_and_check(None, samples=4, seed=0, timeout=5.0)
    assert counters["damaged"] == 0 and stats.damaged_answers == 0


def test_the_driver_trains_bit_exact_through_a_damaged_line():
    """Flips, drops and repeats at 0.1% per byte each, both ways: retries, never a wrong value."""
    errors = LineErrors(flip=1e-3, drop=1e-3, dup=1e-3, seed=3)
    stats, counters = _train_and_check(errors, samples=4, seed=1, timeout=2.0)
    assert sum(errors.counts.values()) > 0
    assert stats.retries > 0 or counters["damaged"] > 0


def test_the_driver_refuses_a_core_built_from_another_config():
    other = CoreParams(net=SnnConfig(layers=(12, 6), timesteps=4), lanes=2)
    with VirtualBoard(CORE) as vb, pytest.raises(CoreError, match="not " + other.core_hash):
        Board.open(vb.path, other, timeout=3.0, byte_time=vb.byte_time)


def test_the_driver_names_a_port_it_cannot_open(tmp_path):
    with pytest.raises(CoreError, match="cannot open"):
        Board.open(str(tmp_path / "ttyNONE"), CORE)


def test_spikeforge_train_on_the_virtual_board_is_verified_bit_exact(tmp_path, capsys):
    """``spikeforge train --target sim``: the digits network's first samples trained on the
    virtual board, every weight and prediction compared with the golden model's."""
    args = ["train", "--target", "sim", "--layers", "64,10", "--lanes", "2", "--epochs", "1"]
    args += ["--samples", "3", "--test-samples", "4", "--out", str(tmp_path), "--json"]
    assert main([*args, "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["verified"] and summary["samples_per_epoch"] == 3
    assert summary["history"][0]["bit_exact"] and summary["history"][0]["predictions_match"]
    assert json.loads((tmp_path / "board.json").read_text())["core_hash"] == summary["core_hash"]


def test_the_board_trainer_notices_a_wrong_weight():
    """A weight changed on the board between epochs: the next epoch's check stops the run."""
    cfg = SnnConfig(layers=(64, 10), timesteps=4)
    params = CoreParams(net=cfg, lanes=5)

    def corrupt(row):
        if row["epoch"] == 1:
            w = board.read_weights()
            w[3, 7] += 1
            board.load_weights(w)

    vb = VirtualBoard(params)
    with (
        vb,
        Board.open(vb.path, params, timeout=5.0, byte_time=vb.byte_time) as board,
        pytest.raises(CoreError, match="epoch 2: 1 of 640 weights"),
    ):
        train_on_board(
            board, cfg, load_dataset("digits"), 2, samples=1, test_samples=1, on_epoch=corrupt
        )


def test_train_target_refuses_float_mode(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--target", "sim", "--mode", "float"])
    assert exc.value.code == 2
    assert "--mode int" in capsys.readouterr().err
