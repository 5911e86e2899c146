"""The sweep's outputs: results table (CSV, JSON), Pareto plots (PNG), one self-contained HTML.

``results.csv`` has one row per point (its parameters as columns, failed points with their
reason), ``results.json`` the records themselves: ``accuracy`` is the validation accuracy (the
objective), ``test_accuracy`` the test accuracy of the same model (reported, not tuned on;
:data:`ACCURACY_LABELS`). The three plots show validation accuracy against
LUT4s, cycles per training sample and energy per training sample: every finished point as a
grey dot, the two-objective front (accuracy up, the metric down) highlighted, joined by a step
line and labelled ``<cores>c w<w_bits>``. ``report.html`` embeds the PNGs as ``data:`` URIs and
has no external links, so the one file can be mailed or archived.
"""

from __future__ import annotations

import base64
import csv
import html
import json
import math
from collections.abc import Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Annotation
from matplotlib.ticker import FuncFormatter

from spikeforge.codesign.pareto import OBJECTIVES, pareto_front
from spikeforge.codesign.space import DIMENSIONS

__all__ = [
    "ACCURACY_LABELS",
    "COLUMNS",
    "PLOTS",
    "fmax_text",
    "plot_fronts",
    "write_html",
    "write_report",
    "write_tables",
]

ACCURACY_LABELS: dict[str, str] = {
    "accuracy": "validation accuracy (the objective)",
    "test_accuracy": "test accuracy (reported, not tuned on)",
}
"""What a record's two accuracies are: the sweep tunes on a stratified fifth held out of the
training split (:meth:`~spikeforge.sw.data.Dataset.holdout`), the test split is only reported.
The summary (``summary.json``) carries this table; the report's headings use it."""

PLOTS = (
    ("luts", "LUT4s"),
    ("train_cycles", "cycles per training sample"),
    ("energy_nj", "energy per training sample (nJ, estimate)"),
)
"""The plotted metrics: record key and axis label. Each is plotted against accuracy."""

_PLOT_FILES = {"luts": "luts", "train_cycles": "cycles", "energy_nj": "energy"}

COLUMNS: tuple[str, ...] = (
    "id",
    "number",
    "status",
    "reason",
    *DIMENSIONS,
    "accuracy",
    "test_accuracy",
    "train_cycles",
    "infer_cycles",
    "luts",
    "ffs",
    "brams",
    "dsps",
    "fmax_mhz",
    "fmax_status",
    "energy_nj",
    "infer_energy_nj",
    "samples_per_joule",
    "chip_bytes",
    "gpu_bytes",
    "traffic_saving",
    "seconds",
    "train_cached",
    "workers",
    "generate_cmd",
)
"""Columns of ``results.csv`` in order: the parameters (:data:`DIMENSIONS`) flattened,
``seconds`` the sum of the record's per-stage seconds, ``train_cached`` whether the training
result came from the cache, ``workers`` the Dask workers that ran the point's stages (``; ``
between them)."""

_PNG = b"\x89PNG\r\n\x1a\n"

# ---------------------------------------------------------------------------------- checks


def _check_records(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """``records`` as a list, after checking each is a mapping with a unique str ``id``."""
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Sequence):
        raise TypeError(f"records must be a sequence of point records, not {records!r}")
    seen: set[str] = set()
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise TypeError(f"records[{i}] must be a mapping, not {r!r}")
        pid = r.get("id")
        if not isinstance(pid, str) or not pid:
            raise ValueError(f"records[{i}]['id'] must be a non-empty str, not {pid!r}")
        if pid in seen:
            raise ValueError(f"records[{i}]['id'] {pid!r} is not unique")
        seen.add(pid)
        params = r.get("params", {})
        if not isinstance(params, Mapping):
            raise TypeError(f"records[{i}]['params'] must be a mapping, not {params!r}")
    return list(records)


def _check_out(out: Path) -> Path:
    """``out`` as a Path to a directory, created if missing."""
    if not isinstance(out, str | Path):
        raise TypeError(f"out must be a path to a directory, not {out!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a directory, not the file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def _number(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is missing, not a number or NaN."""
    if value is None or isinstance(value, bool) or not isinstance(value, Real):
        return None
    value = float(value)
    return None if math.isnan(value) else value


# ---------------------------------------------------------------------------------- tables


def _seconds(r: Mapping[str, Any]) -> float | None:
    secs = r.get("seconds")
    if isinstance(secs, Mapping):
        parts = [v for v in (_number(x) for x in secs.values()) if v is not None]
        return round(sum(parts), 2) if parts else None
    return _number(secs)


def _csv_row(r: Mapping[str, Any]) -> list[Any]:
    params = r.get("params") or {}
    row: list[Any] = []
    for col in COLUMNS:
        if col in DIMENSIONS:
            value = params.get(col)
        elif col == "seconds":
            value = _seconds(r)
        elif col == "workers":
            value = "; ".join(r.get("workers") or [])
        else:
            value = r.get(col)
        row.append(value)  # csv writes None as an empty field
    return row


def write_tables(records: Sequence[Mapping[str, Any]], out: Path) -> tuple[Path, Path]:
    """Write the results table as CSV and the records as JSON.

    Parameters
    ----------
    records : Sequence[Mapping]
        Point records of the sweep, failed ones included.
    out : Path
        Directory to write into (created if missing).

    Returns
    -------
    tuple[Path, Path]
        ``out/results.csv``: a header of :data:`COLUMNS`, then one row per record in input
        order (missing values empty, failed rows with their ``reason``); ``out/results.json``:
        a JSON list of the records, nothing else.

    Raises
    ------
    TypeError, ValueError
        ``records`` is not a sequence of mappings with unique ``id``, or ``out`` is not a
        directory path.
    """
    records = _check_records(records)
    out = _check_out(out)
    csv_path, json_path = out / "results.csv", out / "results.json"
    with csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(_csv_row(r) for r in records)
    json_path.write_text(json.dumps(records, indent=2) + "\n", encoding="utf-8")
    return csv_path, json_path


# ---------------------------------------------------------------------------------- plots


def _label(r: Mapping[str, Any]) -> str:
    """Short label of a point: ``2c w8`` (cores, weight bits), `` sltt`` added for SLTT."""
    p = r.get("params") or {}
    label = f"{p.get('cores', '?')}c w{p.get('w_bits', '?')}"
    return label + " sltt" if p.get("bptt") == "sltt" else label


def _thousands(value: float, _pos: int) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 else f"{value:g}"


def _draw_front(ax, pts: list[Mapping[str, Any]], key: str, axis: str) -> None:
    """Grey dots for ``pts``, their accuracy-vs-``key`` front highlighted and labelled."""
    front_ids = set(pareto_front(pts, {"accuracy": "max", key: "min"}))
    front = sorted((r for r in pts if r["id"] in front_ids), key=lambda r: (r[key], -r["accuracy"]))
    others = [r for r in pts if r["id"] not in front_ids]
    ax.scatter(
        [r[key] for r in others],
        [100 * r["accuracy"] for r in others],
        s=16,
        color="0.7",
        label=f"other finished points ({len(others)})",
        zorder=2,
    )
    xs, ys = [r[key] for r in front], [100 * r["accuracy"] for r in front]
    ax.step(xs, ys, where="post", color="tab:blue", linewidth=1.2, zorder=3)
    ax.scatter(
        xs,
        ys,
        s=40,
        color="tab:blue",
        edgecolors="white",
        linewidths=0.6,
        label=f"front: accuracy \u2191, {axis.split(' (')[0]} \u2193 ({len(front)})",
        zorder=4,
    )
    labels: dict[tuple[float, float], list[str]] = {}  # points in one place share a label
    for r, x, y in zip(front, xs, ys, strict=True):
        labels.setdefault((x, y), []).append(_label(r))
    for (x, y), names in labels.items():
        # Up and left of a front point nothing is better, so no other point sits there.
        ax.annotate(
            ", ".join(dict.fromkeys(names)),
            (x, y),
            textcoords="offset points",
            xytext=(-4, 3),
            ha="right",
            va="bottom",
            fontsize=7.5,
            color="tab:blue",
            zorder=5,
        )
    values = [r[key] for r in pts]
    if min(values) > 0 and max(values) > 10 * min(values):
        ax.set_xscale("log")
    else:
        ax.xaxis.set_major_formatter(FuncFormatter(_thousands))
    ax.margins(x=0.1, y=0.1)
    ax.legend(loc="lower right", fontsize=8, framealpha=0.9)


def _spread_labels(fig: Figure, ax) -> None:
    """Put a front label that would leave the axes on the left to the right of its point, then
    move each label up (in steps of one line) until it overlaps no earlier one."""
    renderer = fig.canvas.get_renderer()
    left = ax.get_window_extent(renderer).x0
    placed = []
    for text in (t for t in ax.texts if isinstance(t, Annotation)):
        if text.get_window_extent(renderer).x0 < left:
            text.set_horizontalalignment("left")
            text.xyann = (4, text.xyann[1])
        for _ in range(12):
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
            dx, dy = text.xyann
            text.xyann = (dx, dy + 8)
        placed.append(text.get_window_extent(renderer))


def _plot_one(records: list[Mapping[str, Any]], key: str, axis: str, path: Path) -> Path:
    pts = [
        r
        for r in records
        if r.get("status") == "ok"
        and _number(r.get("accuracy")) is not None
        and _number(r.get(key)) is not None
    ]
    fig = Figure(figsize=(7, 4.5), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if pts:
        _draw_front(ax, pts, key, axis)
    else:
        ax.text(
            0.5,
            0.5,
            f"no finished point has a value for {axis}",
            ha="center",
            va="center",
            transform=ax.transAxes,
            color="0.4",
        )
    ax.set_xlabel(axis)
    ax.set_ylabel(f"{ACCURACY_LABELS['accuracy']} (%)")
    ax.set_title(f"Validation accuracy vs {axis}")
    ax.grid(True, which="major", alpha=0.3)
    fig.tight_layout()
    _spread_labels(fig, ax)
    fig.savefig(path, dpi=110)
    return path


def plot_fronts(records: Sequence[Mapping[str, Any]], out: Path) -> list[Path]:
    """Plot validation accuracy (the objective) against each metric of :data:`PLOTS`, one PNG
    each.

    Parameters
    ----------
    records : Sequence[Mapping]
        Point records; only ``ok`` points with accuracy and the metric are drawn (failed
        points never).
    out : Path
        Directory to write into (created if missing).

    Returns
    -------
    list[Path]
        ``out/pareto_accuracy_vs_luts.png``, ``..._vs_cycles.png``, ``..._vs_energy.png``,
        in the order of :data:`PLOTS`; always three (a metric no point has, e.g. LUT4s of a
        sweep without synthesis, gives a plot saying so). Each shows the finished points as
        grey dots and the two-objective front (accuracy max, metric min) joined by a step line,
        each front point labelled ``<cores>c w<w_bits>``; the x axis is logarithmic when the
        values span more than 10x.

    Raises
    ------
    TypeError, ValueError
        ``records`` is not a sequence of mappings with unique ``id``, or ``out`` is not a
        directory path.
    """
    records = _check_records(records)
    out = _check_out(out)
    return [
        _plot_one(records, key, axis, out / f"pareto_accuracy_vs_{_PLOT_FILES[key]}.png")
        for key, axis in PLOTS
    ]


# ---------------------------------------------------------------------------------- HTML

_DASH = "\u2014"


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _int(value: Any) -> str:
    v = _number(value)
    return _DASH if v is None else f"{v:,.0f}"


def _dec(value: Any, digits: int = 1) -> str:
    v = _number(value)
    return _DASH if v is None else f"{v:,.{digits}f}"


def _pct(value: Any) -> str:
    v = _number(value)
    return _DASH if v is None else f"{100 * v:.1f}%"


def fmax_text(r: Mapping[str, Any]) -> str | None:
    """A record's Fmax in words: MHz when measured; 'Fmax unknown' after a place-and-route
    timeout; 'not measured' for a Pareto point beyond ``fmax_points``; 'P&R failed' after an
    error; ``None`` when not run."""
    mhz = _number(r.get("fmax_mhz"))
    status = r.get("fmax_status") or "not run"
    if mhz is not None:
        return f"{mhz:.1f} MHz"
    if status in ("not run", "ok"):
        return None
    if status == "timeout":
        return "Fmax unknown"
    return "not measured" if status.startswith("skipped") else "P&R failed"


def _fmax(r: Mapping[str, Any]) -> str:
    """Fmax cell: :func:`fmax_text` (a dash when not run), the status as its tooltip."""
    text = fmax_text(r)
    if text is None:
        return _DASH
    if r.get("fmax_mhz") is not None:
        return text
    return f'<span title="{_esc(r.get("fmax_status"))}">{_esc(text)}</span>'


def _duration(seconds: Any) -> str:
    s = _number(seconds)
    if s is None:
        return _DASH
    if s < 60:
        return f"{s:.1f} s"
    h, rest = divmod(round(s), 3600)
    m, sec = divmod(rest, 60)
    return (f"{h} h " if h else "") + f"{m} min {sec} s"


def _param_cells(r: Mapping[str, Any]) -> list[str]:
    p = r.get("params") or {}
    return [_esc(p.get(d, _DASH)) for d in DIMENSIONS]


_SHORT = {"w_bits": "w bits", "v_bits": "v bits", "g_bits": "g bits", "timesteps": "T"}
_PARAM_HEADS = [_SHORT.get(d, d) for d in DIMENSIONS]


def _table(heads: Sequence[str], rows: Sequence[Sequence[str]], classes: Sequence[str]) -> str:
    """An HTML table; ``heads`` are escaped here, ``rows`` cells must be escaped already."""
    head = "".join(f"<th>{_esc(h)}</th>" for h in heads)
    body = "\n".join(
        f'<tr class="{c}">' + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
        for row, c in zip(rows, classes, strict=True)
    )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>\n{body}\n</tbody></table></div>"
    )


def _chosen_table(chosen: Sequence[Mapping[str, Any]]) -> str:
    """The Pareto points, each followed by a full-width row with its generate command."""
    if not chosen:
        return "<p>No point finished with every objective: the Pareto set is empty.</p>"
    heads = [
        "point",
        *_PARAM_HEADS,
        *ACCURACY_LABELS.values(),
        "LUT4s",
        "cycles / train sample",
        "nJ / train sample (est.)",
        "Fmax",
    ]
    head = "".join(f"<th>{_esc(h)}</th>" for h in heads)
    body = []
    for r in chosen:
        cells = [
            f"<code>{_esc(r['id'])}</code>",
            *_param_cells(r),
            _pct(r.get("accuracy")),
            _pct(r.get("test_accuracy")),
            _int(r.get("luts")),
            _int(r.get("train_cycles")),
            _dec(r.get("energy_nj")),
            _fmax(r),
        ]
        body.append('<tr class="chosen">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        cmd = _esc(r.get("generate_cmd") or _DASH)
        body.append(
            f'<tr class="cmd"><td colspan="{len(heads)}"><code class="cmd">{cmd}</code></td></tr>'
        )
    return (
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead>'
        "<tbody>\n" + "\n".join(body) + "\n</tbody></table></div>"
    )


def _results_table(records: Sequence[Mapping[str, Any]], front: set[str]) -> str:
    heads = [
        "#",
        "point",
        "Pareto",
        "status",
        *_PARAM_HEADS,
        *ACCURACY_LABELS.values(),
        "LUT4s",
        "FFs",
        "BRAMs",
        "DSPs",
        "cycles / train",
        "cycles / infer",
        "Fmax",
        "nJ / train (est.)",
        "nJ / infer (est.)",
        "samples/J (est.)",
        "off-chip saving vs GPU (est.)",
        "reason",
    ]
    rows = [
        [
            _int(r.get("number")),
            f"<code>{_esc(r['id'])}</code>",
            "\u2605" if r["id"] in front else "",
            _esc(r.get("status", _DASH)),
            *_param_cells(r),
            _pct(r.get("accuracy")),
            _pct(r.get("test_accuracy")),
            _int(r.get("luts")),
            _int(r.get("ffs")),
            _int(r.get("brams")),
            _int(r.get("dsps")),
            _int(r.get("train_cycles")),
            _int(r.get("infer_cycles")),
            _fmax(r),
            _dec(r.get("energy_nj")),
            _dec(r.get("infer_energy_nj")),
            _int(r.get("samples_per_joule")),
            _pct(r.get("traffic_saving")),
            f'<span class="reason">{_esc(r.get("reason") or "")}</span>',
        ]
        for r in records
    ]
    classes = [
        "failed" if r.get("status") != "ok" else "chosen" if r["id"] in front else ""
        for r in records
    ]
    return _table(heads, rows, classes)


def _objectives_text(objectives: Mapping[str, str]) -> str:
    arrows = {"max": "\u2191", "min": "\u2193"}
    return ", ".join(f"{k} {arrows.get(d, d)}" for k, d in objectives.items())


def _points_text(summary: Mapping[str, Any]) -> str:
    done, failed = _int(summary.get("done")), _int(summary.get("failed"))
    return f"{_int(summary.get('points'))} ({done} done, {failed} failed)"


def _header(summary: Mapping[str, Any], n_front: int) -> str:
    objectives = summary.get("objectives") or OBJECTIVES
    items = [
        ("space", _esc(summary.get("space", _DASH))),
        ("network", _esc(summary.get("network", _DASH))),
        ("dataset", _esc(summary.get("dataset", _DASH))),
        ("points", _points_text(summary)),
        ("Pareto set", f"{n_front} points on {_esc(_objectives_text(objectives))}"),
        ("wall time", _duration(summary.get("seconds"))),
        ("started", _esc(summary.get("started", _DASH))),
        ("output", f"<code>{_esc(summary.get('out', _DASH))}</code>"),
        ("command", f"<code>{_esc(summary.get('command', _DASH))}</code>"),
    ]
    rows = "\n".join(f"<dt>{_esc(k)}</dt><dd>{v}</dd>" for k, v in items)
    return (
        f"<h1>spikeforge co-design sweep: {_esc(summary.get('space', ''))}</h1>\n"
        f'<dl class="summary">\n{rows}\n</dl>'
    )


def _figures(plots: Sequence[Path]) -> str:
    figs = []
    for p in plots:
        data = base64.b64encode(p.read_bytes()).decode("ascii")
        figs.append(
            f'<figure><img alt="{_esc(p.stem)}" width="770" '
            f'src="data:image/png;base64,{data}"><figcaption>{_esc(p.name)}</figcaption>'
            "</figure>"
        )
    return '<div class="plots">\n' + "\n".join(figs) + "\n</div>"


_HOW_TO_READ = """<p>Every point is one configuration of the training array, trained bit-exactly
with the integer golden model (which the generated Verilog matches bit for bit) on the training
split less a stratified fifth. <b>Validation accuracy</b> is measured on that fifth: it is the
objective, what the sweep tunes on. <b>Test accuracy</b> is the same model on the test split:
reported, never tuned on (choosing by it would make it optimistic). <b>cycles</b> come from the
cycle model, exact against Verilator, on the spikes of validation samples; <b>LUT4s</b>, FFs,
BRAMs and DSPs from Yosys <code>synth_ecp5</code>; <b>Fmax</b> from nextpnr-ecp5, measured for
the Pareto points ('Fmax unknown': place and route ran past its time limit; 'not measured':
beyond the space's <code>fmax_points</code>; a dash: not run; the cell's tooltip says why).</p>
<p>Energy per sample, samples per joule and the off-chip saving are <b>estimates</b>, not
measurements: per-operation energies times the operations performed, and the chip's host
stream against a GPU training with PyTorch autograd at mini-batch 128, fp32, the A100's 40 MB L2
(see <code>docs/energy.md</code>).</p>
<p>The chosen configurations are the Pareto set on all objectives: no other finished point is
at least as good in every one and better in one. Each plot shows the front of accuracy against
that one metric only, so a chosen point can sit off a plot's line. Rebuild a point with its
<code>spikeforge generate</code> command.</p>"""

_CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em 2em; color: #222; max-width: 1600px }
h1 { font-size: 1.5em }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: .15em 1em }
dt { font-weight: 600 }
dd { margin: 0 }
.scroll { overflow-x: auto }
table { border-collapse: collapse; font-size: 12px; margin: .6em 0 }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: right; vertical-align: top;
  white-space: nowrap }
th { background: #eef; white-space: normal }
tr.chosen td { background: #eef6ff }
tr.failed td { background: #fff1f0; color: #666 }
code { font-size: 11.5px }
code.cmd { display: block; text-align: left; white-space: normal; overflow-wrap: anywhere }
tr.cmd td { text-align: left; padding-bottom: 6px }
.reason { display: block; text-align: left; white-space: normal; min-width: 20em; max-width: 40em }
.plots { display: flex; flex-wrap: wrap; gap: 8px }
figure { margin: 0; border: 1px solid #ddd }
figure img { max-width: 100%; height: auto; display: block }
figcaption { font-size: 11px; color: #666; padding: 2px 6px }
.note { background: #f7f7e8; padding: .2em 1em; border-left: 3px solid #cc9 }
"""


def _chosen(
    records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
    """The Pareto records (``summary["pareto"]``, else :func:`pareto_front`), best accuracy
    first, then fewest LUTs."""
    ids = summary.get("pareto")
    if ids is None:
        ids = pareto_front(records)
    if isinstance(ids, str) or not isinstance(ids, Sequence):
        raise TypeError(f"summary['pareto'] must be a list of point ids, not {ids!r}")
    by_id = {r["id"]: r for r in records}
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ValueError(f"summary['pareto'] names points not in records: {unknown!r}")
    chosen = [by_id[i] for i in dict.fromkeys(ids)]
    return sorted(
        chosen,
        key=lambda r: (-(_number(r.get("accuracy")) or 0.0), _number(r.get("luts")) or 0.0),
    )


def write_html(
    records: Sequence[Mapping[str, Any]],
    summary: Mapping[str, Any],
    out: Path,
    plots: Sequence[Path],
) -> Path:
    """Write the self-contained HTML report.

    Parameters
    ----------
    records : Sequence[Mapping]
        Point records of the sweep, failed ones included.
    summary : Mapping
        The sweep summary: ``space``, ``points``, ``done``, ``failed``, ``pareto`` (ids; when
        absent, :func:`~spikeforge.codesign.pareto.pareto_front` of ``records``), ``seconds``,
        ``network``, ``dataset``, ``out``, ``started``, ``command``, optionally
        ``objectives``. Missing entries show as a dash.
    out : Path
        Directory to write into (created if missing).
    plots : Sequence[Path]
        PNG files to embed, in order (as ``data:image/png;base64`` URIs).

    Returns
    -------
    Path
        ``out/report.html``: the summary, the plots, the chosen configurations (the Pareto set,
        each with its ``spikeforge generate`` command), every point (failed ones with their
        reason) and a note on how to read the figures. Every text is HTML-escaped; the file
        loads nothing from elsewhere.

    Raises
    ------
    TypeError, ValueError
        Invalid ``records``, ``summary`` not a mapping, ``summary["pareto"]`` naming unknown
        points, ``out`` not a directory path, or a plot that is not a PNG file.
    """
    records = _check_records(records)
    if not isinstance(summary, Mapping):
        raise TypeError(f"summary must be a mapping, not {summary!r}")
    out = _check_out(out)
    if isinstance(plots, str | bytes) or not isinstance(plots, Sequence):
        raise TypeError(f"plots must be a sequence of PNG paths, not {plots!r}")
    plots = [Path(p) for p in plots]
    for p in plots:
        if not p.is_file() or p.read_bytes()[:8] != _PNG:
            raise ValueError(f"plots must be PNG files, not {str(p)!r}")
    chosen = _chosen(records, summary)
    front = {r["id"] for r in chosen}
    title = f"spikeforge sweep {summary.get('space', '')}"
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_esc(title)}</title><style>{_CSS}</style></head><body>
{_header(summary, len(chosen))}
<h2 id="fronts">Pareto fronts</h2>
{_figures(plots)}
<h2 id="chosen">Chosen configurations</h2>
<p>The Pareto set, best validation accuracy first.</p>
{_chosen_table(chosen)}
<h2 id="points">All points</h2>
<p>\u2605 = in the Pareto set; failed points show their reason.</p>
{_results_table(records, front)}
<h2 id="how-to-read">How to read this</h2>
<div class="note">{_HOW_TO_READ}</div>
</body></html>
"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path


def write_report(
    records: Sequence[Mapping[str, Any]], summary: Mapping[str, Any], out: Path
) -> dict[str, Any]:
    """Write the tables, the plots and the HTML report.

    Parameters
    ----------
    records : Sequence[Mapping]
        Point records of the sweep, failed ones included.
    summary : Mapping
        The sweep summary (see :func:`write_html`).
    out : Path
        Directory to write into (created if missing).

    Returns
    -------
    dict
        ``{"csv": str, "json": str, "plots": [str, str, str], "html": str}``: the paths
        written by :func:`write_tables`, :func:`plot_fronts` and :func:`write_html`.
    """
    csv_path, json_path = write_tables(records, out)
    plots = plot_fronts(records, out)
    page = write_html(records, summary, out, plots)
    return {
        "csv": str(csv_path),
        "json": str(json_path),
        "plots": [str(p) for p in plots],
        "html": str(page),
    }
