"""The bench scripts run end to end on tiny settings and print what they promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, check=False, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_train_throughput_prints_rates_and_ratios():
    out = _run(str(BENCH / "train_throughput.py"), "--samples", "8", "--repeats", "1", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    rates = result["samples_per_second"]
    assert set(rates) >= {
        "int golden model, batch 1",
        "float reference, batch 1",
        "snnTorch, batch 1",
    }
    assert all(r > 0 for r in rates.values())
    assert result["int_over"]["int golden model, batch 1"] == 1.0
    assert "int / this" in out


@pytest.mark.parametrize(
    ("script", "args", "message"),
    [
        ("train_throughput.py", ["--samples", "0"], "--samples: must be >= 1, not 0"),
        ("replica_throughput.py", ["--threads", "x"], "--threads: not an int: 'x'"),
        ("replica_throughput.py", ["--replicas", "4,0"], "replica counts must be positive"),
        ("epoch_rtl.py", ["--samples", "0"], "--samples must lie in [1, 1437], not 0"),
        ("epoch_rtl.py", ["--stall", "1"], "--stall must lie in [0, 1), not 1.0"),
        ("sim_speed.py", ["--stall", "-0.1"], "--stall must lie in [0, 1), not -0.1"),
        ("federated_table.py", ["--rounds", "0"], "--rounds must be >= 1, not 0"),
        ("federated_table.py", ["--local-epochs", "0"], "--local-epochs must be >= 1, not 0"),
        ("mnist_array.py", ["--density", "0"], "--density: must lie in (0, 1], not 0.0"),
        ("mnist_array.py", ["--steps", "0"], "--steps: must be >= 1, not 0"),
    ],
)
def test_throughput_benches_refuse_bad_arguments(script, args, message):
    proc = subprocess.run(
        [sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_replica_throughput_prints_rates_per_replica_and_ratios():
    args = ["--samples", "4", "--repeats", "1", "--replicas", "1,3", "--json"]
    out = _run(str(BENCH / "replica_throughput.py"), *args)
    result = json.loads(out.strip().splitlines()[-1])
    rates, per = result["samples_per_second"], result["per_replica_samples_per_second"]
    assert set(rates) >= {
        "int golden model, batch 1",
        "snnTorch, batch 1",
        "int replicas R=3, batch 1",
    }
    assert all(r > 0 for r in rates.values())
    assert rates["int replicas R=3, batch 1"] == 3 * per["int replicas R=3, batch 1"]
    assert result["over_golden"]["int golden model, batch 1"] == 1.0
    assert result["torch_threads"] == 1 and "/ snnTorch" in out


def test_wbits_table_writes_table_and_plot_and_resumes(tmp_path):
    args = [
        str(BENCH / "wbits_table.py"),
        "--out",
        str(tmp_path),
        "--epochs",
        "1",
        "--w-bits",
        "8",
        "--variants",
        "frac",
        "--workers",
        "1",
        "--seeds",
        "1",
    ]
    out = _run(*args)
    assert "| 8 | 64 |" in (tmp_path / "table.md").read_text()
    assert (tmp_path / "accuracy_vs_wbits.png").stat().st_size > 1000
    assert "running 2" in out
    again = _run(*args)
    assert "2 of 2 runs already done; running 0" in again
    assert set(json.loads((tmp_path / "results.json").read_text())) == {"float/1", "8/frac/1"}


@pytest.mark.rtl
def test_sim_speed_compares_the_transactors_bare_verilator_and_amaranth():
    out = _run(str(BENCH / "sim_speed.py"), "--small", "--steps", "1", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    for sim in ("fast", "cocotbext-axi", "bare", "amaranth"):
        assert result[sim]["cycles"] > 1000
        assert result[sim]["cycles_per_second"] > 0
    # bare Verilator plays the fast run's stream with the same generators: the same cycles
    assert result["bare"]["cycles"] == result["fast"]["cycles"]
    assert result["stall"] == 0.3
    assert "answers identical in all three Verilator runs" in out
    assert "fast / cocotbext-axi:" in out


def test_link_budget_counts_the_frames_bytes_and_names_the_bound():
    rows = json.loads(_run(str(BENCH / "link_budget.py"), "--json").strip().splitlines()[-1])
    assert [r["density"] for r in rows] == [0.05, 0.1, 0.2, 0.5]
    ways = [r[way] for r in rows for way in ("events", "inputs")]
    # 4 answers of one status word: END, seq, 4 bytes, CRC-32, END (no byte needs escaping)
    assert all(w["bytes_to_host"] == 4 * 11 for w in ways)
    sizes = [r["events"]["bytes_to_chip"] for r in rows]
    assert sizes == sorted(sizes)  # more spikes, more events on the line
    # intensities: the key and 16 words of 4 whatever the density (escapes aside)
    assert all(
        abs(r["inputs"]["bytes_to_chip"] - rows[0]["inputs"]["bytes_to_chip"]) < 8 for r in rows
    )
    assert rows[-1]["inputs"]["bytes_to_chip"] < rows[-1]["events"]["bytes_to_chip"] / 5
    assert all(w["bound"] in ("link", "core") and w["ratio"] >= 1 for w in ways)


def test_randman_table_trains_every_mode_and_reports_the_test_split():
    out = _run(str(BENCH / "randman_table.py"), "--seeds", "1", "--epochs", "1", "--json")
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["split"] == "test"
    assert set(summary["runs"]) == {"float", "int bptt", "int sltt"}
    for rows in summary["runs"].values():
        assert len(rows) == 1 and 0.0 <= rows[0]["test_accuracy"] <= 1.0
    bptt, sltt = (summary["runs"][k][0]["test_accuracy"] for k in ("int bptt", "int sltt"))
    assert (bptt, sltt) == (0.195, 0.155)  # integer training is deterministic on any machine


def test_the_traffic_table_in_the_docs_is_what_the_script_prints():
    out = _run(str(BENCH / "traffic_table.py"))
    doc = (BENCH.parent / "docs" / "energy.md").read_text()
    lines = out.strip().splitlines()
    assert len(lines) == 2 + 2 * 4
    missing = [line for line in lines if line not in doc]
    assert not missing, f"docs/energy.md lacks (re-run bench/traffic_table.py): {missing}"


def test_the_fit_table_in_the_docs_is_what_the_script_prints():
    out = _run(str(BENCH / "fit_table.py"))
    rows = json.loads(_run(str(BENCH / "fit_table.py"), "--json"))
    doc = (BENCH.parent / "docs" / "results.md").read_text()
    missing = [line for line in out.strip().splitlines() if line not in doc]
    assert not missing, f"docs/results.md lacks (re-run bench/fit_table.py): {missing}"
    # each row is the largest: 8 more hidden neurons no longer fit the device
    from spikeforge.codesign.mapping import MappingError, map_network, min_cores
    from spikeforge.sw.config import SnnConfig

    for r in rows:
        widths = {"narrow (w4, g6, T8)": {"w_bits": 4, "g_bits": 6, "timesteps": 8}}.get(
            r["widths"], {}
        )
        assert r["bram_estimate"] <= r["brams"]
        net = SnnConfig(layers=(784, r["hidden"] + 8, 10), **widths)
        fused = r["cores_kind"] == "fused"
        with pytest.raises(MappingError, match=f"one ECP5 {r['device']} has {r['brams']}"):
            k = min_cores(net, device=r["device"], fused=fused)
            map_network(net, k, device=r["device"], fused=fused)


@pytest.mark.rtl
def test_mnist_array_trains_on_verilator_and_its_cycles_are_the_models(tmp_path):
    """The MNIST-sized bench on a tiny network: bit-exact steps whose measured cycles are the
    array cycle model's (the figures in docs/results.md come from the same code at 784-256-10)."""
    out = _run(
        str(BENCH / "mnist_array.py"),
        *("--layers", "24,16,4", "--steps", "2", "--out", str(tmp_path), "--json"),
    )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["bit_exact"] and result["cores"] == 2
    assert result["step_cycles"] == result["model_step_cycles"]
    assert result["infer_cycles"] == result["model_infer_cycles"]
    assert "2 steps bit-exact" in out


def test_array_scaling_simulates_arrays_too_large_for_one_device_and_says_so():
    """The deep network's 12- and 24-core arrays exceed one 85F's block RAMs: the scaling study
    still places them (it simulates, it does not build a bitstream) and marks them."""
    args = ["--layers", "64,128,128,128,10", "--cores", "4,12", "--steps", "1", "--model-only"]
    out = _run(str(BENCH / "array_scaling.py"), *args, "--json")
    rows = json.loads(out.strip().splitlines()[-1])["rows"]
    assert [(r["cores"], r["cores_per_layer"], r["fits"]) for r in rows] == [
        (4, [1, 1, 1, 1], True),
        (12, [3, 4, 4, 1], False),
    ]
    assert rows[0]["bram"] <= 208 < rows[1]["bram"]
    assert f"{rows[1]['bram']}!" in out and "exceed one 85k (208)" in out
