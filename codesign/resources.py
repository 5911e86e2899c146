"""FPGA resources of a mapped array from Yosys ``synth_ecp5``, synthesized bottom-up and cached.

A sweep synthesizes many arrays whose cores repeat: the slices of a split layer have the same
sizes and differ only in constants (their first neuron and its LFSR seeds), and the same slice
sizes come back at other core counts. So the resources of an array are composed from real
synthesis runs, each cached by a hash:

* every distinct **core shape** -- the core's parameters with its slice moved to neuron 0 -- is
  synthesized alone (its ports become the top's ports) and cached by that core hash;
* the **interconnect** -- router, response merger, spike and error links -- is synthesized
  from the array's own Verilog with every core kept as a black box, cached by the array hash;

and ``resources = sum over cores of its shape's counts + the interconnect's``. Yosys optimizes
each part on its own (no constant propagation across a core's ports), so the sum is an
out-of-context figure; docs/codesign.md gives its measured distance from a flat synthesis of
the whole array. Fmax needs the real placement: :func:`array_fmax` synthesizes the whole array
flat and places and routes it with nextpnr-ecp5, bounded by a timeout.

Caches live in ``cache_dir`` (``core/<hash>/`` and ``glue/<hash>/``, each with ``synth.json``);
a file lock per entry lets parallel workers share them without synthesizing anything twice.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock

from spikeforge.hw.array import array_hash
from spikeforge.hw.axis import INNER
from spikeforge.hw.generate import generate, generate_array
from spikeforge.hw.params import CoreParams
from spikeforge.hw.synth import SynthError, count_resources, synthesize

__all__ = [
    "array_fmax",
    "compose",
    "core_shape",
    "shapes",
    "synth_core",
    "synth_glue",
]

RESOURCES = ("luts", "ffs", "brams", "dsps")


def core_shape(p: CoreParams) -> CoreParams:
    """``p`` with its slice moved to start at neuron 0: the same hardware up to constants."""
    lo, hi = p.neuron_range
    if lo == 0:
        return p
    return dataclasses.replace(p, neurons=(0, hi - lo))


def _cached(entry: Path, run) -> dict[str, Any]:
    """``entry/synth.json``, produced by ``run(entry)`` under the entry's lock if missing."""
    entry.mkdir(parents=True, exist_ok=True)
    result = entry / "synth.json"
    with FileLock(str(entry) + ".lock"):
        if result.is_file():
            return {**json.loads(result.read_text()), "cached": True}
        report = run(entry)
        data = report.to_dict()
        result.write_text(json.dumps(data, indent=2) + "\n")
        return {**data, "cached": False}


def synth_core(p: CoreParams, cache_dir: Path, timeout: float = 1800) -> dict[str, Any]:
    """Synthesis report of core ``p`` alone (cached by its core hash); raises SynthError."""

    def run(entry: Path):
        man = generate(p, entry, checks=False)
        return synthesize(
            entry / man["verilog"],
            p.name,
            entry,
            device=p.device,
            yosys_timeout=timeout,
            no_rw_check=True,
        )

    return _cached(Path(cache_dir) / "core" / p.core_hash, run)


def synth_glue(cores: Sequence[CoreParams], cache_dir: Path, timeout: float = 1800) -> dict:
    """Synthesis report of the array's interconnect: its Verilog with every core a black box
    (cached by the array hash); raises SynthError."""

    def run(entry: Path):
        man = generate_array(list(cores), entry, checks=False)
        return synthesize(
            entry / man["verilog"],
            man["top"],
            entry,
            device=cores[0].device,
            yosys_timeout=timeout,
            no_rw_check=True,
            blackbox=[f"{man['top']}.{INNER}.core*"],
        )

    return _cached(Path(cache_dir) / "glue" / array_hash(cores), run)


def shapes(cores: Sequence[CoreParams]) -> Counter:
    """Every distinct core shape of the array with how many cores have it."""
    return Counter(core_shape(p) for p in cores)


def compose(
    cores: Sequence[CoreParams], core_reports: Mapping[str, Mapping], glue: Mapping
) -> dict[str, Any]:
    """Array totals from the shape reports (by core hash) and the interconnect's report.

    Returns ``luts``, ``ffs``, ``brams``, ``dsps``, ``parts`` (one row per core shape and the
    interconnect: counts, multiplicity, whether it came from the cache) and ``synth_seconds``
    (Yosys time spent on parts that were not cached)."""
    totals = dict.fromkeys(RESOURCES, 0)
    parts, seconds = [], 0.0
    for shape, count in shapes(cores).items():
        rep = core_reports[shape.core_hash]
        parts.append(
            {
                "part": f"core {shape.n_out}x{shape.n_in} layer {shape.layer}",
                "count": count,
                **{k: rep[k] for k in RESOURCES},
                "cached": rep["cached"],
            }
        )
        seconds += 0 if rep["cached"] else rep["yosys_seconds"]
        for k in RESOURCES:
            totals[k] += count * rep[k]
    seconds += 0 if glue["cached"] else glue["yosys_seconds"]
    glue_counts = count_resources(glue["cells"])  # black-box cells are not counted
    parts.append({"part": "interconnect", "count": 1, **glue_counts, "cached": glue["cached"]})
    for k in RESOURCES:
        totals[k] += glue_counts[k]
    return {**totals, "parts": parts, "synth_seconds": round(seconds, 1)}


def array_fmax(
    cores: Sequence[CoreParams],
    workdir: Path,
    *,
    pnr_timeout: float,
    target_mhz: float = 100.0,
    synth_timeout: float = 1800,
    routers: Sequence[str] = ("router1",),
) -> dict[str, Any]:
    """Place and route the whole array (flat synthesis, nextpnr-ecp5) for its Fmax.

    ``routers`` are tried in order on the one netlist (Yosys runs once), each with
    ``pnr_timeout`` seconds: the next one only when the one before ran past it (router1 is
    erratic on some congested arrays, where router2 finishes in minutes; docs/codesign.md).

    Returns ``{"fmax_mhz", "fmax_status", "pnr_seconds", "pnr_router", "pnr_timeouts",
    "flat": {luts, ffs, brams, dsps}}``; ``fmax_status`` is ``"ok"``, ``"timeout"`` (every
    router passed ``pnr_timeout``: Fmax unknown) or ``"failed: <reason>"``; ``pnr_router`` the
    router of the last run, ``pnr_timeouts`` the routers that timed out before it,
    ``pnr_seconds`` nextpnr's wall time over all of them. Never raises
    for a tool failure.
    """
    workdir = Path(workdir)
    try:
        man = generate_array(list(cores), workdir, checks=False)
        rep = synthesize(
            workdir / man["verilog"],
            man["top"],
            workdir,
            device=cores[0].device,
            pnr=True,
            target_mhz=target_mhz,
            yosys_timeout=synth_timeout,
            pnr_timeout=pnr_timeout,
            router=tuple(routers),
            no_rw_check=True,
        )
    except SynthError as exc:
        first = str(exc).splitlines()[0]
        return {"fmax_mhz": None, "fmax_status": f"failed: {first}", "pnr_seconds": None}
    return {
        "fmax_mhz": rep.fmax_mhz,
        "fmax_status": rep.pnr_status,
        "pnr_seconds": rep.pnr_seconds,
        "pnr_router": rep.router,
        "pnr_timeouts": list(rep.pnr_timeouts),
        "flat": {k: getattr(rep, k) for k in RESOURCES},
    }
