"""NIR import and export (sw/nir_io.py, spikeforge import / export --nir, the API).

The round trip goes through the real libraries: an snnTorch model written by
``snntorch.export_nir``, imported here, exported again and read back by
``snntorch.import_nir``; spikes are compared on random inputs.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import re
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch import utils
from snntorch.export_nir import export_to_nir
from snntorch.import_nir import import_from_nir

import spikeforge as sf
from spikeforge.cli import main
from spikeforge.sw.checkpoint import save_checkpoint
from spikeforge.sw.config import ConfigError, SnnConfig
from spikeforge.sw.golden import GoldenModel
from spikeforge.sw.nir_io import NirError, export_graph, import_graph, read_graph, write_graph

K = 3
BETA = 1 - 2.0**-K
DT = 1e-4
T = 16


def _leaky(n: int, output: bool = False) -> snn.Leaky:
    return snn.Leaky(
        beta=torch.full((n,), BETA),
        threshold=torch.ones(n),
        reset_mechanism="zero",
        init_hidden=True,
        output=output,
    )


@pytest.fixture(scope="module")
def snn_net() -> torch.nn.Sequential:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(64, 32, bias=False),
        _leaky(32),
        torch.nn.Linear(32, 10, bias=False),
        _leaky(10, output=True),
    )
    with torch.no_grad():
        net[0].weight.normal_(0, 0.35)
        net[2].weight.normal_(0, 0.6)
    return net


@pytest.fixture(scope="module")
def inputs() -> torch.Tensor:
    return (torch.rand(T, 200, 64, generator=torch.Generator().manual_seed(1)) < 0.25).float()


def _run(net, x: torch.Tensor, graph: bool) -> torch.Tensor:
    """Output spikes ``[T, B, n]`` of an snnTorch model (or a NIR-imported graph module)."""
    utils.reset(net)
    out, state = [], None
    with torch.no_grad():
        for t in range(len(x)):
            if graph:
                spikes, state = net(x[t], state)
            else:
                spikes = net(x[t])
                spikes = spikes[0] if isinstance(spikes, tuple) else spikes
            out.append(spikes)
    return torch.stack(out)


def _export(net: torch.nn.Module) -> nir.NIRGraph:
    """``snntorch.export_nir.export_to_nir`` on an unbatched sample, without nirtorch 2.6's
    deprecation warning about the call snnTorch 1.0 makes."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "nirtorch.extract_nir_graph", DeprecationWarning)
        return export_to_nir(net, torch.zeros(net[0].in_features))


def _lif(n: int, *, tau=DT * 2**K, v_leak=0.0, v_reset=0.0, thr=1.0) -> nir.LIF:
    return nir.LIF(
        tau=np.full(n, tau),
        r=np.full(n, tau / DT),
        v_leak=np.full(n, v_leak),
        v_threshold=np.full(n, thr),
        v_reset=np.full(n, v_reset),
    )


def _graph(*layers, edges=None) -> nir.NIRGraph:
    """Input -> layers... -> Output, named l0, l1, ...; ``edges`` replaces the chain."""
    nodes = {"input": nir.Input(input_type={"input": np.array([4])})}
    names = [f"l{i}" for i in range(len(layers))]
    nodes.update(zip(names, layers, strict=True))
    nodes["output"] = nir.Output(output_type={"output": np.array([3])})
    chain = ["input", *names, "output"]
    if edges is None:
        edges = list(itertools.pairwise(chain))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _weights(n_out: int = 3, n_in: int = 4) -> np.ndarray:
    return np.arange(n_out * n_in, dtype=np.float64).reshape(n_out, n_in) / 20 - 0.2


# -- the round trip ---------------------------------------------------------------------------
def test_snntorch_to_spikeforge_to_snntorch_gives_the_same_spikes(
    tmp_path, snn_net, inputs
) -> None:
    """snnTorch -> NIR -> spikeforge (16-bit) -> NIR -> snnTorch: the output spikes agree with the
    original model's on 99.5% or more of (sample, timestep, neuron) places; the differences are
    the documented ones (weights rounded, floor-shift leak, >= against >). The golden model on
    the imported weights agrees as closely."""
    write_graph(tmp_path / "a.nir", _export(snn_net))
    imported = sf.import_nir(tmp_path / "a.nir", w_bits=16, timesteps=T)
    cfg = imported.config
    assert (cfg.layers, cfg.leak_shift, cfg.reset, cfg.w_bits) == ((64, 32, 10), K, "zero", 16)
    assert all(q.saturated == 0 and q.max_error_lsb <= 0.5 for q in imported.layers)
    assert all(q.rms_relative_error < 1e-3 for q in imported.layers)
    graph, _ = export_graph(cfg, imported.weights)
    write_graph(tmp_path / "b.nir", graph)
    with contextlib.redirect_stdout(io.StringIO()):  # snnTorch prints while it imports
        back = import_from_nir(read_graph(tmp_path / "b.nir"))
    original = _run(snn_net, inputs, graph=False)
    assert 0.05 < float(original.mean()) < 0.5  # the layers fire, but not always
    again = _run(back, inputs, graph=True)
    assert float((original == again).float().mean()) >= 0.995
    golden = GoldenModel(cfg, imported.master_weights()).forward(inputs.permute(1, 0, 2).long())
    chip = golden[-1].s.permute(1, 0, 2).float()
    assert float((original == chip).float().mean()) >= 0.995
    assert not torch.equal(original, torch.zeros_like(original).bernoulli_(0.1))  # can fail


def test_spikeforge_to_nir_to_spikeforge_keeps_every_weight(tmp_path) -> None:
    for theta in (None, 40):  # the default theta, and one an import would choose itself
        cfg = SnnConfig(layers=(64, 24, 10), timesteps=8, reset="zero", theta=theta)
        weights = [w >> cfg.frac_bits for w in GoldenModel(cfg).weights]
        weights[0][0, 0] = (1 << (cfg.w_bits - 1)) - 1  # the largest weight there is
        graph, notes = export_graph(cfg, weights)
        write_graph(tmp_path / "n.nir", graph)
        back = sf.import_nir(tmp_path / "n.nir", w_bits=cfg.w_bits, timesteps=8)
        assert back.config.theta == cfg.theta if theta else back.config.theta <= cfg.theta
        if theta is not None:
            assert back.config == cfg
            assert all(torch.equal(a, b) for a, b in zip(back.weights, weights, strict=True))
        assert not any("reset" in n for n in notes)


def test_export_says_nir_cannot_hold_a_subtracting_reset() -> None:
    cfg = SnnConfig(layers=(8, 4), timesteps=4)  # reset = "subtract", the default
    _, notes = export_graph(cfg, [torch.zeros(4, 8, dtype=torch.int64)])
    assert any("NIR cannot express" in n and "subtract" in n for n in notes)
    with pytest.raises(ConfigError, match="direct"):
        export_graph(cfg.replace(encoder="direct"), [torch.zeros(4, 8, dtype=torch.int64)])


# -- what the import refuses, by name and reason ------------------------------------------------
@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            [nir.Conv1d(None, np.ones((3, 4, 1)), 1, 0, 1, 1, np.zeros(3)), _lif(3)],
            "node 'l0' (Conv1d) cannot run on the chip: a convolution",
        ),
        (
            [
                nir.Linear(_weights()),
                nir.CubaLIF(
                    tau_syn=np.full(3, 1e-3),
                    tau_mem=np.full(3, 8e-4),
                    r=np.full(3, 8.0),
                    v_leak=np.zeros(3),
                    v_threshold=np.ones(3),
                ),
            ],
            "node 'l1' (CubaLIF) cannot run on the chip: a current-based LIF",
        ),
        ([nir.Linear(_weights()), _lif(3, v_leak=0.1)], "node 'l1' (LIF) has v_leak = 0.1"),
        ([nir.Linear(_weights()), _lif(3, v_reset=-0.5)], "node 'l1' has v_reset = -0.5"),
        (
            [nir.Linear(_weights()), _lif(3, tau=DT * 6)],
            "node 'l1' (LIF) neuron 0: tau = 0.0006 s is not dt * 2**k",
        ),
        (
            [nir.Affine(_weights(), np.array([0.0, 0.1, 0.0])), _lif(3)],
            "node 'l0' (Affine) has a non-zero bias",
        ),
        (
            [nir.Linear(_weights()), nir.IF(r=np.ones(3), v_threshold=np.ones(3))],
            "node 'l1' (IF) cannot run on the chip: it never leaks",
        ),
        (
            [
                nir.Linear(_weights(4, 4)),
                _lif(4),
                nir.Linear(_weights(3, 4)),
                _lif(3, tau=DT * 2**5),
            ],
            "different time constants (k = 'l1': 3, 'l3': 5)",
        ),
        ([nir.Linear(_weights())], "node 'l0' (Linear) is not followed by a LIF layer"),
        (
            [nir.Linear(_weights()), nir.Scale(np.ones(3)), _lif(3)],
            "node 'l1' (Scale) cannot run on the chip: a Scale node",
        ),
    ],
    ids=[
        "conv",
        "cubalif",
        "v-leak",
        "v-reset",
        "tau",
        "bias",
        "if",
        "two-leaks",
        "no-neuron",
        "scale",
    ],
)
def test_the_import_refuses_what_the_chip_cannot_run(layers, message) -> None:
    with pytest.raises(NirError, match=re.escape(message)):
        import_graph(_graph(*layers))


def test_the_import_refuses_recurrence_and_branches() -> None:
    layers = (nir.Linear(_weights(3, 3)), _lif(3))
    cyc = [("input", "l0"), ("l0", "l1"), ("l1", "l0"), ("l1", "output")]
    with pytest.raises(NirError, match="the edge 'l1' -> 'l0' closes a cycle"):
        import_graph(_graph(*layers, edges=cyc))
    fork = [("input", "l0"), ("l0", "l1"), ("l0", "output"), ("l1", "output")]
    with pytest.raises(NirError, match=re.escape("node 'l0' has 2 outgoing edges (['l1', 'out")):
        import_graph(_graph(*layers, edges=fork))


def test_approximate_maps_the_leak_and_says_how_far_off_it_is() -> None:
    graph = _graph(nir.Linear(_weights()), _lif(3, tau=DT * 6))
    imported = import_graph(graph, approximate=True)
    assert imported.config.leak_shift == 3  # log2(6) = 2.58 -> 3
    (note,) = [n for n in imported.notes if n.startswith("approximated")]
    assert "leak_shift = 3" in note and "largest beta error is 0.0417" in note  # 1/6 - 1/8
    graph = _graph(nir.Linear(_weights()), nir.IF(r=np.ones(3), v_threshold=np.ones(3)))
    assert import_graph(graph, approximate=True).config.leak_shift == 16


def test_theta_keeps_every_weight_unsaturated_and_fields_are_checked() -> None:
    big = _graph(nir.Linear(_weights() * 40), _lif(3))  # weights up to 16 thresholds
    imported = import_graph(big, w_bits=8)
    assert imported.config.theta == 9  # floor(127.5 / 14)
    assert all(q.saturated == 0 for q in imported.layers)
    assert any("theta = 9, below the default 64" in n for n in imported.notes)
    forced = import_graph(big, w_bits=8, theta=64)
    assert forced.layers[0].saturated > 0
    assert any("saturated" in n for n in forced.notes)
    with pytest.raises(ConfigError, match="leak_shift come"):
        import_graph(big, leak_shift=2)
    with pytest.raises(ConfigError, match="dt must be a positive"):
        import_graph(big, dt=0)


# -- the CLI and the API ------------------------------------------------------------------------
def test_cli_import_train_init_and_export(tmp_path, snn_net, capsys) -> None:
    write_graph(tmp_path / "m.nir", _export(snn_net))
    toml = tmp_path / "net.toml"
    assert main(["import", str(tmp_path / "m.nir"), "-o", str(toml), "--timesteps", "4"]) == 0
    out = capsys.readouterr().out
    assert "network 64-32-10: leak_shift 3" in out and "rms rel. error" in out
    cfg = SnnConfig.from_toml(toml)
    assert cfg.layers == (64, 32, 10) and cfg.timesteps == 4 and cfg.reset == "zero"
    start = sf.initial_weights(toml.with_suffix(".pt"), cfg)
    run = tmp_path / "run"
    args = ["train", "--config", str(toml), "--init", str(toml.with_suffix(".pt")), "--epochs"]
    assert main([*args, "1", "--out", str(run), "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(summary["history"]) == 1
    trained = sf.initial_weights(run / "checkpoint.pt", cfg)
    assert not torch.equal(trained[0], start[0])
    assert main(["export", str(run / "checkpoint.pt"), "--nir", str(tmp_path / "t.nir")]) == 0
    graph = nir.read(tmp_path / "t.nir")
    np.testing.assert_array_equal(graph.nodes["linear0"].weight, (trained[0] >> 4).numpy())


def test_cli_names_a_bad_nir_file_and_a_float_checkpoint(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.nir"
    bad.write_text("not hdf5")
    for path, message in ((bad, "is not a readable NIR file"), (tmp_path / "x", "does not exist")):
        with pytest.raises(SystemExit) as exc:
            main(["import", str(path), "-o", str(tmp_path / "n.toml")])
        assert exc.value.code == 2 and message in capsys.readouterr().err
    cfg = SnnConfig(layers=(8, 4), timesteps=2)
    state = {"weights": [torch.zeros(4, 8)]}  # a float checkpoint's shape is not looked at
    save_checkpoint(tmp_path / "f.pt", cfg, "float", state, {"epoch": 0})
    with pytest.raises(SystemExit) as exc:
        main(["export", str(tmp_path / "f.pt"), "--nir", str(tmp_path / "f.nir")])
    assert exc.value.code == 2 and "is a float checkpoint" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", "--init", str(bad), "--mode", "float"])
    assert exc.value.code == 2 and "--init starts integer training" in capsys.readouterr().err


def test_the_readme_python_example_runs(tmp_path, snn_net, monkeypatch, capsys) -> None:
    """The README's ``import spikeforge as sf`` block, run as written in a folder holding the
    ``model.nir`` and the integer checkpoint it names."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    (code,) = [b for b in blocks if "import spikeforge as sf" in b and "import_nir" in b]
    monkeypatch.chdir(tmp_path)
    write_graph("model.nir", _export(snn_net))
    ckpt = Path("runs/train-int-HASH/checkpoint.pt")
    imported = sf.import_nir("model.nir")
    sf.save_import(imported, ckpt.with_suffix(".toml"))
    ckpt.with_suffix(".pt").rename(ckpt)
    exec(compile(code, "README.md", "exec"), {})
    theta, errors = capsys.readouterr().out.split(" ", 1)
    assert int(theta) == imported.config.theta == 61  # a weight is 2.08 thresholds: below 64
    assert errors.startswith("[0.0")  # the RMS errors of the two layers
    assert Path("net.toml").is_file() and Path("net.pt").is_file()
    assert nir.read("trained.nir").nodes["linear1"].weight.shape == (10, 32)
