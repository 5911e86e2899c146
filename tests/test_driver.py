"""The driver over pyserial on the virtual board: the board top's Verilog under Verilator, its
UART pins on a pseudo-terminal (cocotbext-uart at 25 Mbaud).

The digits network (64 inputs, 10 neurons, T = 4) trains through ``spikeforge train --target
sim`` and every weight and every test prediction equals the golden model's: on a clean line
with spike events, and on a line that flips, drops and repeats bytes at 0.1% each, both ways,
with the core's rate encoder (intensities on the link); and a 64-16-10 network on a
three-core array through the damaged line. A few samples each (the whole epoch is `make
board-sim`); about 4 minutes with the three builds.
"""

from __future__ import annotations

import json

import pytest
import torch

from spikeforge.board_train import train_on_board
from spikeforge.cli import main
from spikeforge.codesign.mapping import map_network
from spikeforge.driver import ArrayBoard, Board
from spikeforge.hw.array import array_hash
from spikeforge.hw.params import CoreParams
from spikeforge.sim.session import CoreError
from spikeforge.sim.virtual_board import VirtualBoard
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset

DIGITS = SnnConfig(layers=(64, 10), timesteps=4)
TRAIN = ["train", "--target", "sim", "--layers", "64,10", "--timesteps", "4", "--lanes", "5"]
TRAIN += ["--epochs", "1", "--samples", "20", "--test-samples", "60", "--json", "--no-progress"]
RETRIES = 30
"""On the damaged line a WRITE of one 64-value row (~270 bytes) gets through with chance
0.997^270 = 44%: 9 tries all fail for 0.6% of such frames, 31 for 1e-7."""


def _train(tmp_path, capsys, *flags: str, samples: int = 20, test_samples: int = 60) -> dict:
    assert main([*TRAIN, "--out", str(tmp_path), *flags]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (epoch,) = summary["history"]
    assert summary["verified"] and epoch["bit_exact"] and epoch["predictions_match"]
    assert summary["samples_per_epoch"] == samples and summary["test_samples"] == test_samples
    recorded = json.loads((tmp_path / "board.json").read_text())
    assert recorded["design_hash"] == summary["design_hash"]
    return summary


@pytest.mark.rtl
def test_digits_train_bit_exact_on_the_virtual_board(tmp_path, capsys):
    """20 samples with spike events (LOAD_SPIKES), then 60 test predictions."""
    summary = _train(tmp_path, capsys)
    board = summary["virtual_board"]
    assert summary["input"] == "spike events"
    assert board["passed"] and sum(board["to_chip"].values()) == 0
    assert summary["link"]["damaged_answers"] == 0


@pytest.mark.rtl
def test_digits_train_bit_exact_through_a_damaged_line(tmp_path, capsys):
    """The same with the on-chip rate encoder through 0.1% flips, drops and repeats per byte
    each way: damaged frames are sent again, never run twice, never written wrong."""
    flags = ["--rate-encoder", "--sim-errors", "0.001", "--sim-seed", "1", "--frame-words", "32"]
    flags += ["--retries", str(RETRIES)]
    summary = _train(tmp_path, capsys, *flags)
    board, link = summary["virtual_board"], summary["link"]
    assert summary["input"] == "intensities (on-chip rate encoder)"
    assert min(board["to_chip"].values()) > 0 and min(board["to_host"].values()) > 0
    assert link["retries"] > 0 and link["damaged_answers"] > 0


@pytest.mark.rtl
def test_a_core_array_trains_bit_exact_through_a_damaged_line(tmp_path, capsys):
    """64-16-10 on three cores (the hidden layer split in two): 12 samples and 30 test
    predictions through 0.1% flips, drops and repeats per byte each way. Every routed packet
    draws one answer frame per addressed core; a retried broadcast is answered from the
    link's store, never run twice; every weight of both layers equals the golden model's."""
    flags = ["--layers", "64,16,10", "--lanes", "4", "--cores", "3", "--samples", "12"]
    flags += ["--test-samples", "30", "--sim-errors", "0.001", "--sim-seed", "2"]
    flags += ["--frame-words", "32", "--retries", str(RETRIES)]
    summary = _train(tmp_path, capsys, *flags, samples=12, test_samples=30)
    board, link = summary["virtual_board"], summary["link"]
    assert summary["cores"] == 3
    assert min(board["to_chip"].values()) > 0 and min(board["to_host"].values()) > 0
    assert link["retries"] > 0


@pytest.mark.rtl
def test_an_array_board_says_what_it_is_and_refuses_another_design():
    """INFO of the array behind the link: its hash and cores; a driver that expects one core
    (or another mapping) is refused with both hashes."""
    net = SnnConfig(layers=(64, 16, 10), timesteps=4)
    cores = tuple(map_network(net, 3, lanes=4).core_params())
    with VirtualBoard(cores) as vb:
        with Board.open(vb.path, cores, **vb.link_timing) as board:
            assert isinstance(board, ArrayBoard)
            info = board.info()
            assert info["hash"] == array_hash(cores) and info["cores"] == 3
        other = tuple(map_network(net, 2, lanes=4).core_params())
        with pytest.raises(CoreError, match=f"there is {array_hash(cores)}, not"):
            Board.open(vb.path, other, **vb.link_timing)
        core = CoreParams(net=SnnConfig(layers=(64, 10), timesteps=4), lanes=5)
        with pytest.raises(CoreError, match="not a single core there"):
            Board.open(vb.path, core, **vb.link_timing)


@pytest.mark.rtl
def test_the_driver_refuses_a_core_built_from_another_config():
    core = CoreParams(net=DIGITS, lanes=5)
    other = CoreParams(net=DIGITS, lanes=2)
    array = tuple(map_network(SnnConfig(layers=(64, 16, 10), timesteps=4), 3).core_params())
    with VirtualBoard(core) as vb:
        with pytest.raises(CoreError, match="not " + other.core_hash):
            Board.open(vb.path, other, **vb.link_timing)
        with pytest.raises(CoreError, match="not an array there"):
            Board.open(vb.path, array, **vb.link_timing)


def test_the_driver_names_a_port_it_cannot_open(tmp_path, capsys):
    with pytest.raises(CoreError, match="cannot open"):
        Board.open(str(tmp_path / "ttyNONE"), CoreParams(net=DIGITS, lanes=5))
    # the CLI says it in one line (exit status 2), not with a traceback
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--target", str(tmp_path / "ttyNONE"), "--epochs", "1", "--no-progress"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "spikeforge train: error: cannot open" in err and "Traceback" not in err


@pytest.mark.rtl
def test_the_board_trainer_notices_a_wrong_weight():
    """A weight changed on the board between epochs: the next epoch's check stops the run."""
    params = CoreParams(net=DIGITS, lanes=5)

    def corrupt(row):
        if row["epoch"] == 1:
            w = board.read_weights()
            w[3, 7] += 1
            board.load_weights(w)

    vb = VirtualBoard(params)
    with (
        vb,
        Board.open(vb.path, params, **vb.link_timing) as board,
        pytest.raises(CoreError, match="epoch 2: 1 of 640 weights"),
    ):
        assert board.info()["hash"] == params.core_hash
        train_on_board(
            board, DIGITS, load_dataset("digits"), 2, samples=1, test_samples=1, on_epoch=corrupt
        )


@pytest.mark.rtl
def test_intensities_need_a_core_with_the_rate_encoder():
    params = CoreParams(net=DIGITS, lanes=5)
    with VirtualBoard(params) as vb, Board.open(vb.path, params, **vb.link_timing) as board:
        with pytest.raises(CoreError, match="has no rate encoder"):
            board.train_step(torch.zeros(64, dtype=torch.int64), 3, key=1)
        with pytest.raises(ValueError, match="need the sample's key"):
            board.predict(torch.zeros(64, dtype=torch.int64))


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--mode", "float"], "--mode int"),
        (["--frame-words", "0"], "--frame-words must be >= 1, not 0"),
        (["--retries", "-1"], "--retries must be >= 0, not -1"),
        (["--sim-errors", "0.5"], "--sim-errors must be in [0, 1/3), not 0.5"),
        (["--target", "/dev/ttyNONE", "--sim-errors", "0.01"], "use --target sim"),
    ],
)
def test_train_target_refuses_bad_flags_before_starting(flags, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--target", "sim", *flags])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
