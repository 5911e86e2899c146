"""Training runs, checkpoints (save, resume, refuse), and the `spikeforge train` command."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from spikeforge.cli import main
from spikeforge.sw.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.train import train_float, train_int

SMALL = {"layers": (64, 16, 10), "timesteps": 4}


@pytest.fixture(scope="module")
def tiny_digits():
    ds = load_dataset("digits")
    return replace(
        ds,
        x_train=ds.x_train[:60],
        y_train=ds.y_train[:60],
        x_test=ds.x_test[:40],
        y_test=ds.y_test[:40],
    )


class Killed(Exception):
    pass


def _kill_after(epoch: int):
    def on_epoch(row):
        if row["epoch"] == epoch:
            raise Killed

    return on_epoch


def test_int_resume_after_a_kill_is_bit_exact(tmp_path, tiny_digits):
    cfg = SnnConfig(**SMALL)
    straight = train_int(cfg, tiny_digits, 4, tmp_path / "a.pt")
    with pytest.raises(Killed):
        train_int(cfg, tiny_digits, 4, tmp_path / "b.pt", on_epoch=_kill_after(2))
    _, killed = load_checkpoint(tmp_path / "b.pt", cfg, "int")
    assert len(killed["meta"]["history"]) == 2  # the epoch finished before the kill is kept
    resumed = train_int(cfg, tiny_digits, 4, tmp_path / "b.pt", resume=True)
    _, a = load_checkpoint(tmp_path / "a.pt", cfg, "int")
    _, b = load_checkpoint(tmp_path / "b.pt", cfg, "int")
    for key in ("weights", "lfsr_states", "grad_acc"):
        assert all(torch.equal(x, y) for x, y in zip(a["state"][key], b["state"][key], strict=True))
    assert a["state"]["lr_shift"] == b["state"]["lr_shift"] == cfg.lr_shift + 2
    assert straight.history == resumed.history
    assert resumed.test_accuracy == straight.test_accuracy


def test_float_resume_continues(tmp_path, tiny_digits):
    cfg = SnnConfig(**SMALL)
    with pytest.raises(Killed):
        train_float(cfg, tiny_digits, 2, checkpoint=tmp_path / "f.pt", on_epoch=_kill_after(1))
    res = train_float(cfg, tiny_digits, 2, checkpoint=tmp_path / "f.pt", resume=True)
    assert [h["epoch"] for h in res.history] == [1, 2]


def test_checkpoint_refuses_another_config(tmp_path):
    cfg = SnnConfig(**SMALL)
    path = save_checkpoint(tmp_path / "c.pt", cfg, "int", {"weights": []}, {"epoch": 0})
    with pytest.raises(
        CheckpointError,
        match=r"another config: v_bits: checkpoint 16, requested 14; "
        r"w_bits: checkpoint 8, requested 6",
    ):
        load_checkpoint(path, cfg.replace(w_bits=6, theta=cfg.theta))
    with pytest.raises(CheckpointError, match="is for mode 'int', not 'float'"):
        load_checkpoint(path, cfg, "float")
    saved, _ = load_checkpoint(path)
    assert saved == cfg
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")


def test_cli_train_json_last_line(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "train",
        "--mode",
        "int",
        "--epochs",
        "1",
        "--layers",
        "64,16,10",
        "--timesteps",
        "2",
        "--out",
        str(out),
        "--json",
        "--no-progress",
    ]
    assert main(argv) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    summary = json.loads(last)
    for key in ("mode", "config", "test_accuracy", "epochs", "train_seconds", "checkpoint"):
        assert key in summary
    assert summary["mode"] == "int" and summary["config"]["timesteps"] == 2
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    cfg, _ = load_checkpoint(summary["checkpoint"], mode="int")
    assert cfg.layers == (64, 16, 10)


def test_cli_flags_override_toml(tmp_path, capsys):
    toml = tmp_path / "net.toml"
    toml.write_text("layers = [64, 8, 10]\ntimesteps = 2\nw_bits = 6\n")
    argv = [
        "train",
        "--config",
        str(toml),
        "--w-bits",
        "4",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "r"),
        "--json",
        "--no-progress",
    ]
    assert main(argv) == 0
    cfg = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["config"]
    assert cfg["w_bits"] == 4 and cfg["theta"] == 4 and cfg["layers"] == [64, 8, 10]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--w-bits", "40"], "w_bits = 40 is out of range: allowed [2, 16]"),
        (["--layers", "64,16,3"], "layers[-1] = 3 is smaller than the 10 classes"),
        (["--layers", "32,10"], "layers[0] = 32 but dataset 'digits' has 64 features"),
        (["--epochs", "0"], "--epochs must be >= 1, not 0"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_message(tmp_path, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "spikeforge", "train", "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert message in proc.stderr


def test_cli_resume_refuses_a_changed_config(tmp_path, capsys):
    base = [
        "train",
        "--epochs",
        "1",
        "--layers",
        "64,8,10",
        "--timesteps",
        "2",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(base) == 0
    with pytest.raises(SystemExit) as exc:
        main([*base, "--resume", "--lr-shift", "7"])
    assert exc.value.code == 2
    assert "lr_shift: checkpoint 10, requested 7" in capsys.readouterr().err


def test_the_command_line_stays_light():
    """Building the parser (``spikeforge --help``) imports neither torch nor Dask: each
    subcommand imports its heavy modules when it runs."""
    code = "import sys, spikeforge.cli; print(sorted({'torch', 'distributed'} & set(sys.modules)))"
    proc = subprocess.run(
        [sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
