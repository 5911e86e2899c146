"""Core parameters fail early and clearly; `spikeforge generate` writes lint-clean Verilog."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from spikeforge.cli import main
from spikeforge.hw.generate import LINT_WAIVERS, generate, generate_rack, lint
from spikeforge.hw.params import DEFAULT_CORE_NET, CoreParams
from spikeforge.hw.protocol import Opcode
from spikeforge.sw.config import ConfigError, SnnConfig


@pytest.mark.parametrize(
    ("net", "core", "message"),
    [
        ({"layers": (64, 64)}, {"lanes": 7}, "lanes = 7 does not divide the layer's 64 neurons"),
        ({"layers": (64, 64)}, {"lanes": 128}, "lanes = 128 is out of range: allowed [1, 64]"),
        ({"layers": (64, 64), "encoder": "direct"}, {}, "encoder = 'direct' is not supported"),
        ({"layers": (8, 4)}, {"layer": 1}, "layer = 1 is out of range: allowed [0, 0]"),
        ({"layers": (8, 4), "acc_bits": 40}, {"lanes": 2}, "acc_bits = 40 is out of range"),
        (
            {"layers": (4096, 512), "timesteps": 16},
            {"lanes": 8, "device": "25k"},
            "block RAMs",
        ),
        ({"layers": (8, 4)}, {"lanes": 2, "device": "12k"}, "device = '12k' is not known"),
        ({"layers": (8, 4), "lr_shift": 38}, {"lanes": 2}, "lr_shift + lr_range - 1 = 41"),
        ({"layers": (8, 4), "lr_shift": 34}, {"lanes": 2}, "lr_shift - frac_bits = 33"),
    ],
)
def test_bad_core_parameters_fail_before_elaboration(net, core, message):
    with pytest.raises((ConfigError, ValueError)) as info:
        CoreParams(net=SnnConfig(**net), **core)
    assert message in str(info.value)


def test_memories_are_sized_from_the_config():
    p = CoreParams(net=DEFAULT_CORE_NET, lanes=8)
    mems = {m.name: m for m in p.memories}
    assert (mems["weights"].depth, mems["weights"].word_bits) == (8 * 64, 8 * 12)
    assert (mems["membranes"].depth, mems["membranes"].word_bits) == (8 * 8, 8 * (16 + 1))  # u, s
    assert mems["grads"].width == DEFAULT_CORE_NET.acc_bits
    assert "eprev" not in mems  # layer 0 sends no error backwards by default
    assert "eprev" in {m.name for m in CoreParams(net=DEFAULT_CORE_NET, emit_error=True).memories}


def test_generated_verilog_is_lint_clean_and_the_manifest_describes_it(tmp_path):
    p = CoreParams(net=SnnConfig(layers=(16, 8), timesteps=4), lanes=4, emit_error=True)
    man = generate(p, tmp_path)
    text = (tmp_path / "spikeforge_core.v").read_text()
    assert "module spikeforge_core(" in text
    assert lint(tmp_path / "spikeforge_core.v") == []
    on_disk = json.loads((tmp_path / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(man))
    ports = {port["name"]: port for port in on_disk["ports"]}
    for name in ("s_axis_tdata", "m_axis_tdata"):
        assert ports[name]["width"] == 32
    assert ports["s_axis_tready"]["direction"] == "out"
    assert ports["m_axis_tready"]["direction"] == "in"
    assert on_disk["opcodes"]["BACKWARD"] == int(Opcode.BACKWARD)
    assert on_disk["core_hash"] == p.core_hash
    assert on_disk["params"]["net"]["layers"] == [16, 8]
    assert {m["name"] for m in on_disk["memories"]} >= {"weights", "grads", "eprev", "lfsr"}


def test_lint_without_waivers_does_report_warnings(tmp_path):
    """The lint check can fail: without the documented waivers Verilator complains."""
    p = CoreParams(net=SnnConfig(layers=(8, 4), timesteps=2), lanes=2)
    generate(p, tmp_path)
    fewer = {k: v for k, v in LINT_WAIVERS.items() if k != "WIDTHEXPAND"}
    assert any("WIDTHEXPAND" in w for w in lint(tmp_path / "spikeforge_core.v", waivers=fewer))


def test_cli_generate_from_a_config_file(tmp_path, capsys):
    cfg = tmp_path / "core.toml"
    cfg.write_text('layers = [12, 6]\ntimesteps = 3\nreset = "zero"\n\n[core]\nlanes = 3\n')
    out = tmp_path / "gen"
    assert main(["generate", "--config", str(cfg), "-o", str(out), "--lint", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    man = json.loads((out / "manifest.json").read_text())
    assert summary["core_hash"] == man["core_hash"]
    assert summary["lint_warnings"] == []
    assert man["params"]["lanes"] == 3 and man["params"]["net"]["reset"] == "zero"


def test_cli_generate_rejects_bad_core_keys_and_values(tmp_path, capsys):
    cfg = tmp_path / "core.toml"
    cfg.write_text("layers = [8, 4]\n[core]\nlane = 2\n")
    with pytest.raises(SystemExit) as info:
        main(["generate", "--config", str(cfg), "-o", str(tmp_path / "x")])
    assert info.value.code == 2
    assert "unknown [core] key(s) lane" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["generate", "-o", str(tmp_path / "y"), "--lanes", "5"])
    assert info.value.code == 2
    assert "lanes = 5 does not divide the layer's 64 neurons" in capsys.readouterr().err


@pytest.mark.pnr
def test_cli_synth_places_and_routes_a_small_core(tmp_path, capsys):
    out = tmp_path / "syn"
    argv = ["synth", "--layers", "4,2", "--timesteps", "2", "--lanes", "1", "--device", "25k"]
    assert main([*argv, "--pnr", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["pnr_status"] == "ok"
    assert summary["luts"] > 100 and summary["ffs"] > 100 and summary["brams"] >= 0
    assert summary["fmax_mhz"] > 0
    assert summary["overflows"] == []
    assert json.loads((out / "synth.json").read_text())["core_hash"] == summary["core_hash"]
    assert (out / "manifest.json").is_file() and (out / "nextpnr.log").is_file()


def test_cli_synth_tries_its_routers_in_order_on_one_netlist(tmp_path, capsys):
    out = tmp_path / "syn"
    argv = ["synth", "--layers", "4,2", "--timesteps", "2", "--lanes", "1", "--device", "25k"]
    argv += ["--pnr", "--pnr-timeout", "0.01", "--router", "router1", "router2", "-o", str(out)]
    assert main(argv) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.endswith("(place and route: timeout, router2; router1 ran past 0.01 s)"), line
    saved = json.loads((out / "synth.json").read_text())
    assert (saved["router"], saved["pnr_timeouts"]) == ("router2", ["router1"])
    with pytest.raises(SystemExit) as info:
        main(["synth", "--router", "router3"])
    assert info.value.code == 2
    assert "invalid choice: 'router3'" in capsys.readouterr().err


def test_generated_verilog_is_reproducible_across_interpreter_runs(tmp_path):
    """Same config, same bytes, whatever Python's hash seed (build caches rely on it)."""
    texts = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        subprocess.run(
            [
                sys.executable,
                "-m",
                "spikeforge",
                "generate",
                "--layers",
                "8,4",
                "--lanes",
                "2",
                "-o",
                str(out),
            ],
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            capture_output=True,
        )
        texts.append((out / "spikeforge_core.v").read_bytes())
    assert texts[0] == texts[1]


@pytest.mark.parametrize(
    ("net", "core"),
    [
        ({"layers": (6, 4), "timesteps": 4, "w_bits": 4}, {"lanes": 1, "emit_error": True}),
        ({"layers": (5, 4), "timesteps": 1, "w_bits": 16}, {"lanes": 4, "lr_range": 1}),
        ({"layers": (1, 1), "timesteps": 2, "surrogate": "triangle"}, {"lanes": 1}),
        ({"layers": (3, 2, 1), "timesteps": 3, "reset": "zero"}, {"layer": 1, "lanes": 1}),
    ],
)
def test_edge_shapes_are_lint_clean(tmp_path, net, core):
    """One lane, one group, one input, one neuron, one lr value: no zero-width signals."""
    generate(CoreParams(net=SnnConfig(**net), **core), tmp_path)
    assert lint(tmp_path / "spikeforge_core.v") == []


def test_a_rack_of_different_cores_is_lint_clean_with_prefixed_ports(tmp_path):
    net = SnnConfig(layers=(8, 6, 4), timesteps=3)
    cores = [CoreParams(net=net, layer=0, lanes=2), CoreParams(net=net, layer=1, lanes=4)]
    man = generate_rack(cores, tmp_path)
    assert lint(tmp_path / man["verilog"]) == []
    assert [c["core_hash"] for c in man["cores"]] == [p.core_hash for p in cores]
    text = (tmp_path / man["verilog"]).read_text()
    for n in range(2):
        for port in ("s_axis_tdata", "s_axis_tready", "m_axis_tvalid", "m_axis_tlast"):
            assert f"c{n}_{port}" in text
    with pytest.raises(ValueError, match="at least one"):
        generate_rack([], tmp_path)
    with pytest.raises(TypeError, match=r"cores\[1\] must be a CoreParams"):
        generate_rack([cores[0], net], tmp_path)
