"""Pareto fronts and the sweep's report files (CSV, JSON, PNG plots, self-contained HTML)."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest
from matplotlib.image import imread

from spikeforge.codesign.pareto import OBJECTIVES, dominates, pareto_front
from spikeforge.codesign.report import (
    ACCURACY_LABELS,
    COLUMNS,
    PLOTS,
    plot_fronts,
    write_html,
    write_report,
    write_tables,
)

GOALS = {"accuracy": "max", "luts": "min"}
EVIL = "<script>alert(1)</script> synthesis failed"


def _rec(pid, acc, luts, status="ok", *, cores=1, w_bits=8, **more):
    """A point record like the sweep's; ``pid`` is used as the id as given; its test accuracy
    is two points below ``acc``, the validation accuracy."""
    record = {
        "id": pid,
        "number": more.pop("number", 0),
        "params": {
            "cores": cores,
            "lanes": 2,
            "w_bits": w_bits,
            "v_bits": "auto",
            "g_bits": 8,
            "timesteps": 8,
            "bptt": "bptt",
            "rounding": "stochastic",
            "surrogate": "boxcar",
        },
        "status": status,
        "reason": None,
        "accuracy": acc,
        "test_accuracy": None if acc is None else round(acc - 0.02, 4),
        "train_cycles": 1000,
        "infer_cycles": 500,
        "luts": luts,
        "ffs": 2000,
        "brams": 4,
        "dsps": 0,
        "fmax_mhz": None,
        "fmax_status": "not run",
        "energy_nj": 50.0,
        "infer_energy_nj": 20.0,
        "samples_per_joule": 2.0e7,
        "chip_bytes": 680.0,
        "gpu_bytes": 4156.0,
        "traffic_saving": 0.836,
        "generate_cmd": f"spikeforge generate --network n.toml --cores {cores} -o build/p-{pid}",
        "seconds": {"train": 1.5, "synth": 2.25},
        "worker": "vm pid 1",
        "workers": ["vm pid 1", "vm pid 2"],
        "train_cached": False,
    }
    record.update(more)
    return record


# ---------------------------------------------------------------------------------- pareto


def test_the_front_keeps_exactly_the_points_nothing_beats_in_input_order():
    recs = [
        _rec("a", 0.90, 4000),
        _rec("b", 0.95, 8000),
        _rec("c", 0.89, 9000),  # dominated by a and b
        _rec("d", 0.95, 8000),  # equal to b in both: kept with it
        _rec("e", 0.99, None),  # an objective missing
        _rec("f", 0.99, 100, "failed", reason="synthesis failed"),  # would beat everything
        _rec("g", 0.50, 1000),  # worst accuracy, fewest LUTs
        _rec("h", 0.90, 4001),  # one LUT more than a: dominated
    ]
    assert pareto_front(recs, GOALS) == ["a", "b", "d", "g"]


def test_the_four_objective_front_keeps_a_point_best_in_one_objective():
    recs = [
        _rec("best", 0.95, 4000, train_cycles=1000, energy_nj=40.0),
        _rec("slow", 0.95, 4000, train_cycles=2000, energy_nj=40.0),  # dominated by best
        _rec("fast", 0.50, 9000, train_cycles=500, energy_nj=90.0),  # fastest only
        _rec("nrg", 0.90, 4000, train_cycles=1000, energy_nj=None),  # no energy
        _rec("nan", 0.99, 100, train_cycles=1, energy_nj=float("nan")),  # NaN: no value
    ]
    assert pareto_front(recs) == ["best", "fast"]
    assert pareto_front([]) == []


def test_dominates_needs_strictly_better_in_one_objective():
    a, b = {"accuracy": 0.9, "luts": 100}, {"accuracy": 0.9, "luts": 200}
    assert dominates(a, b, GOALS)
    assert not dominates(b, a, GOALS)
    assert not dominates(a, dict(a), GOALS)  # equal points do not dominate
    assert dominates({"accuracy": 0.95, "luts": 100}, a, GOALS)  # "max" direction
    assert not dominates({"accuracy": 0.95, "luts": 101}, a, GOALS)  # a trade-off


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: pareto_front([], {"accuracy": "up"}), ValueError, "'up'"),
        (lambda: pareto_front([], {}), ValueError, "objectives"),
        (lambda: pareto_front("abc"), TypeError, "records"),
        (lambda: pareto_front([{"status": "ok"}]), ValueError, "records\\[0\\]"),
        (lambda: dominates({"luts": None}, {"luts": 1}, {"luts": "min"}), ValueError, "'luts'"),
        (lambda: dominates({"luts": "1"}, {"luts": 1}, {"luts": "min"}), TypeError, "'1'"),
    ],
)
def test_bad_arguments_are_named(call, error, match):
    with pytest.raises(error, match=match):
        call()


# ---------------------------------------------------------------------------------- report


SKIP = "skipped: the space measures at most fmax_points = 1 Pareto points"


def _sweep():
    recs = [
        _rec("a1", 0.90, 4000, number=0, cores=1, w_bits=8, fmax_status="timeout"),
        _rec("b2", 0.95, 8000, number=1, cores=2, w_bits=8, fmax_mhz=101.5, fmax_status="ok"),
        _rec("c3", 0.80, 12000, number=2, cores=3, w_bits=4, train_cycles=500, energy_nj=40.0),
        _rec("d4", 0.70, 16000, number=3, cores=4, w_bits=4, train_cycles=600),
        _rec("e5", 0.60, 3000, number=4, cores=1, w_bits=4, energy_nj=45.0, fmax_status=SKIP),
        _rec("f6", None, None, "failed", number=5, reason=EVIL, energy_nj=None, train_cycles=None),
    ]
    front = pareto_front(recs)
    summary = {
        "space": "small",
        "points": 6,
        "done": 5,
        "failed": 1,
        "pareto": front,
        "seconds": 812.3,
        "network": [64, 10],
        "dataset": "digits",
        "out": "runs/sweep",
        "started": "2026-11-23T23:50:00",
        "command": "spikeforge sweep --space small",
    }
    return recs, front, summary


def test_the_sweep_fixture_has_a_front_and_points_off_it():
    recs, front, _ = _sweep()
    assert front == ["a1", "b2", "c3", "e5"]  # d4 is dominated by c3, f6 failed
    assert set(front) < {r["id"] for r in recs}


def test_the_tables_have_one_row_per_point_and_round_trip(tmp_path):
    recs, _, _ = _sweep()
    csv_path, json_path = write_tables(recs, tmp_path / "new")  # creates the folder
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert tuple(reader.fieldnames) == COLUMNS
    assert [r["id"] for r in rows] == [r["id"] for r in recs]
    assert [r["cores"] for r in rows] == ["1", "2", "3", "4", "1", "1"]  # params flattened
    assert rows[5]["status"] == "failed" and rows[5]["reason"] == EVIL
    assert rows[5]["accuracy"] == "" and rows[1]["fmax_mhz"] == "101.5"
    assert (rows[0]["accuracy"], rows[0]["test_accuracy"]) == ("0.9", "0.88")
    assert rows[0]["seconds"] == "3.75"  # the stages summed
    assert rows[0]["workers"] == "vm pid 1; vm pid 2" and rows[0]["train_cached"] == "False"
    assert json.loads(json_path.read_text()) == recs


def test_the_report_writes_every_file_and_embeds_the_plots(tmp_path):
    recs, _, summary = _sweep()
    paths = write_report(recs, summary, tmp_path)

    assert set(paths) == {"csv", "json", "plots", "html"}
    assert all(isinstance(p, str) for p in [paths["csv"], paths["json"], paths["html"]])
    names = [Path(p).name for p in paths["plots"]]
    assert names == [
        "pareto_accuracy_vs_luts.png",
        "pareto_accuracy_vs_cycles.png",
        "pareto_accuracy_vs_energy.png",
    ]
    pngs = []
    for p in paths["plots"]:
        data = Path(p).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000
        h, w = imread(p).shape[:2]
        assert 700 <= w <= 850 and 450 <= h <= 550  # 7 x 4.5 in at 110 dpi
        pngs.append(data)

    page = Path(paths["html"]).read_text(encoding="utf-8")
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(e) for e in embedded] == pngs
    assert page.count("data:image/png;base64,") == 3


def _html(tmp_path, recs, summary):
    plots = plot_fronts(recs, tmp_path)
    return write_html(recs, summary, tmp_path, plots).read_text(encoding="utf-8")


def test_the_html_shows_the_chosen_commands_escapes_text_and_links_nothing(tmp_path):
    recs, front, summary = _sweep()
    page = _html(tmp_path, recs, summary)
    chosen = page.split('id="chosen"')[1].split('id="points"')[0]
    for r in recs:
        assert (r["generate_cmd"] in chosen) == (r["id"] in front)
        assert f"<code>{r['id']}</code>" in page.split('id="points"')[1]  # every point listed
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; synthesis failed" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    for text in ("small", "5 done, 1 failed", "13 min 32 s", "spikeforge sweep --space small"):
        assert text in page.split('id="fronts"')[0]
    assert "docs/energy.md" in page and "synth_ecp5" in page and "estimates" in page


def test_the_html_formats_numbers_and_fmax(tmp_path):
    recs, _, summary = _sweep()
    page = _html(tmp_path, recs, summary)
    rows = {m[0]: m[1] for m in re.findall(r"<td><code>(\w+)</code></td>(.*?)</tr>", page)}
    assert "Fmax unknown" in rows["a1"] and "MHz" not in rows["a1"]
    assert "101.5 MHz" in rows["b2"]
    assert "<td>\u2014</td>" in rows["c3"] and "Fmax unknown" not in rows["c3"]
    assert f'<span title="{SKIP}">not measured</span>' in rows["e5"]
    assert 'title="timeout">Fmax unknown</span>' in rows["a1"]
    assert "90.0%" in rows["a1"] and "16,000" in rows["d4"] and "20,000,000" in rows["d4"]


def test_failed_points_stay_off_the_plots(tmp_path):
    recs, _, _ = _sweep()
    # A failed point whose numbers would put it on every front must change no pixel.
    ghost = _rec("g7", 0.99, 10, "failed", reason="timeout after 600 s in training")
    ghost.update(train_cycles=1, energy_nj=1.0)
    clean = [p.read_bytes() for p in plot_fronts(recs, tmp_path / "clean")]
    with_ghost = [p.read_bytes() for p in plot_fronts([*recs, ghost], tmp_path / "ghost")]
    assert with_ghost == clean
    moved = [p.read_bytes() for p in plot_fronts([*recs, {**ghost, "status": "ok"}], tmp_path)]
    assert all(a != b for a, b in zip(moved, clean, strict=True))  # the comparison can fail


def test_a_metric_no_point_has_still_gets_its_plot(tmp_path):
    recs = [_rec("a", 0.9, None), _rec("b", 0.8, None, train_cycles=10)]
    paths = plot_fronts(recs, tmp_path)
    assert [Path(p).stem.split("_vs_")[1] for p in paths] == ["luts", "cycles", "energy"]
    assert all(imread(p).shape[1] > 700 for p in paths)
    assert [k for k, _ in PLOTS] == [k for k in OBJECTIVES if k != "accuracy"]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda t: write_tables({"id": "a"}, t), TypeError, "records"),
        (lambda t: write_tables([_rec("a", 1, 1), _rec("a", 1, 1)], t), ValueError, "'a'"),
        (lambda t: write_tables([{"status": "ok"}], t), ValueError, "records\\[0\\]"),
        (lambda t: write_html([_rec("a", 1, 1)], [], t, []), TypeError, "summary"),
        (lambda t: write_html([_rec("a", 1, 1)], {"pareto": ["zz"]}, t, []), ValueError, "zz"),
        (lambda t: write_html([], {}, t, [t / "missing.png"]), ValueError, "missing.png"),
        (lambda t: plot_fronts([], 3), TypeError, "out"),
    ],
)
def test_bad_report_arguments_are_named(tmp_path, call, error, match):
    with pytest.raises(error, match=match):
        call(tmp_path)


def test_a_record_with_only_id_status_and_reason_is_reported(tmp_path):
    recs, _, summary = _sweep()
    lost = {"id": "h8", "params": {}, "status": "failed", "reason": "worker lost: KilledWorker"}
    paths = write_report([*recs, lost], {**summary, "points": 7, "failed": 2}, tmp_path)
    with open(paths["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[-1]["id"] == "h8" and rows[-1]["reason"] == "worker lost: KilledWorker"
    assert rows[-1]["cores"] == "" and rows[-1]["luts"] == ""
    page = Path(paths["html"]).read_text(encoding="utf-8")
    assert "worker lost: KilledWorker" in page and "<code>h8</code>" in page


def test_the_cli_table_lists_the_front_best_accuracy_first_and_says_why_fmax_is_missing():
    from spikeforge.sweep_cli import pareto_table

    recs, front, summary = _sweep()
    rows = pareto_table(summary, recs).splitlines()[2:-1]
    assert [row.split()[0] for row in rows] == sorted(
        front, key=lambda p: -next(r["accuracy"] for r in recs if r["id"] == p)
    )
    by_id = {row.split()[0]: row for row in rows}
    assert by_id["a1"].endswith("unknown") and by_id["b2"].endswith("101.5 MHz")
    assert by_id["e5"].endswith("not measured") and by_id["c3"].endswith("-")


def test_the_report_says_which_accuracy_is_tuned_on_and_which_is_only_reported(tmp_path):
    from spikeforge.sweep_cli import pareto_table

    assert ACCURACY_LABELS == {
        "accuracy": "validation accuracy (the objective)",
        "test_accuracy": "test accuracy (reported, not tuned on)",
    }
    recs, _, summary = _sweep()
    page = _html(tmp_path, recs, summary)
    for table in ('id="chosen"', 'id="points"'):
        heads = page.split(table)[1].split("</thead>")[0]
        assert all(f"<th>{label}</th>" in heads for label in ACCURACY_LABELS.values())
    rows = {m[0]: m[1] for m in re.findall(r"<td><code>(\w+)</code></td>(.*?)</tr>", page)}
    assert "<td>95.0%</td><td>93.0%</td>" in rows["b2"]  # validation, then test
    assert "<dt>dataset</dt><dd>digits</dd>" in page
    assert "never tuned on" in page.split('id="how-to-read"')[1]
    text = pareto_table(summary, recs).splitlines()
    assert text[0].split()[6:10] == ["val", "acc", "test", "acc"]
    assert "95.0%    93.0%" in next(row for row in text if row.startswith("b2"))
    assert "test acc: test accuracy (reported, not tuned on)" in text[-1]
