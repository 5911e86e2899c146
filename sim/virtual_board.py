"""A virtual board: the board top's Verilog under Verilator, its UART on a pseudo-terminal, so
the driver and pyserial open it like a board.

::

    with VirtualBoard(params) as vb, Board.open(vb.path, params, **vb.link_timing) as board:
        ...

``params`` is one core's :class:`~spikeforge.hw.params.CoreParams` or an array's cores.

:class:`VirtualBoard` generates the board top with simulation models of the PLL and the pins
(:func:`~spikeforge.hw.virtual_board.generate_virtual_board`), Verilates it (cached per
config in ``folder``, like every build of :mod:`~spikeforge.sim.rtl_runner`) and runs the
testbench :mod:`spikeforge.sim.tb_board` in a thread: cocotbext-uart drives and samples the
UART pins, the bytes go to and from a pseudo-terminal whose device path is :attr:`path`,
damaged on the way by ``errors`` (:class:`~spikeforge.sim.serial_sim.LineErrors`).
:meth:`close` stops the simulation and fills :attr:`result` (cycles, bytes each way, the
damage done); a simulation that failed raises there, naming its log. Each run has its own
folder (``run-*`` beside the build), removed after a clean stop, so boards of one config can
run side by side.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from spikeforge.hw.board import checked_design, design_hash
from spikeforge.hw.uart import check_divisor
from spikeforge.hw.virtual_board import TOP, generate_virtual_board
from spikeforge.sim import rtl_runner
from spikeforge.sim.serial_sim import LineErrors

__all__ = ["DEFAULT_FOLDER", "VirtualBoard"]

DEFAULT_FOLDER = Path("build") / "virtual-board"
"""Where builds and runs go by default (relative to the working directory)."""


class VirtualBoard:
    """The board top of ``design`` under Verilator on a pseudo-terminal (a context manager).

    Parameters
    ----------
    design : CoreParams or sequence of CoreParams
        One core, or an array's cores.
    errors : LineErrors, optional
        Damage on the line, both ways (each way its own generator, seeded from ``seed``).
    folder : Path, optional
        Build and run folder; the build is reused while the Verilog is the same.
    divisor : int
        The UART's clock cycles per bit (4, the UART's least: 25 Mbaud at the simulated
        100 MHz; the board runs the same logic with 33 for 3 Mbaud).
    poll_cycles : int
        Simulated cycles between two looks at the pseudo-terminal.
    start_timeout : float
        Seconds the build and the simulator's start may take (a first build compiles).
    max_seconds : float
        Wall time after which the simulation stops by itself.
    """

    def __init__(
        self,
        design,
        *,
        errors: LineErrors | None = None,
        folder: Path | None = None,
        divisor: int = 4,
        poll_cycles: int = 64,
        start_timeout: float = 900.0,
        max_seconds: float = 4 * 3600.0,
    ):
        self.design = checked_design(design)
        check_divisor(divisor)
        if isinstance(poll_cycles, bool) or not isinstance(poll_cycles, int) or poll_cycles < 1:
            raise ValueError(f"poll_cycles must be an int >= 1, not {poll_cycles!r}")
        self.errors = errors or LineErrors()
        self.divisor, self.poll_cycles = divisor, poll_cycles
        self.start_timeout, self.max_seconds = start_timeout, max_seconds
        root = Path(folder) if folder is not None else DEFAULT_FOLDER
        self.folder = (root / f"{design_hash(self.design)}-d{divisor}").resolve()
        self.path = ""
        self.result: dict[str, Any] = {}
        self.build_seconds = 0.0
        self._thread: threading.Thread | None = None
        self._run: rtl_runner.RunResult | None = None
        self._error: BaseException | None = None

    @property
    def link_timing(self) -> dict[str, float]:
        """``timeout`` and ``byte_time`` for :meth:`spikeforge.driver.Board.open`: a simulated
        byte takes under a millisecond of wall time, a command without bytes under 0.1 s."""
        return {"timeout": 0.3, "byte_time": 1e-3}

    def __enter__(self) -> VirtualBoard:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> str:
        """Build, start the simulation and wait for its pseudo-terminal; its path."""
        t0 = time.monotonic()
        build = rtl_runner.build(
            self.folder,
            top=TOP,
            emit=lambda out: generate_virtual_board(self.design, out, divisor=self.divisor),
            config_hash_key="board_hash",
        )
        self.build_seconds = build.seconds
        manifest = json.loads((self.folder / "rtl" / "manifest.json").read_text())
        self.folder.mkdir(parents=True, exist_ok=True)
        run = self._rundir = Path(tempfile.mkdtemp(prefix="run-", dir=self.folder))
        ready, stop = run / "ready.json", run / "stop"
        ready.unlink(missing_ok=True)
        stop.unlink(missing_ok=True)
        case = {
            "baud": manifest["baud"],
            "poll_cycles": self.poll_cycles,
            "errors": {k: v for k, v in asdict(self.errors).items() if k != "counts"},
            "ready": str(ready),
            "stop": str(stop),
            "max_seconds": self.max_seconds,
        }
        self._stop = stop

        def simulate():
            try:
                self._run = rtl_runner.run(
                    build, run, case, testbench="spikeforge.sim.tb_board", waves_on_failure=False
                )
            except BaseException as exc:  # reported by start() or close()
                self._error = exc

        self._thread = threading.Thread(target=simulate, name="virtual-board", daemon=True)
        self._thread.start()
        deadline = t0 + self.start_timeout
        while not ready.exists():
            if not self._thread.is_alive():
                self._thread.join()
                raise RuntimeError(f"the virtual board did not start: {self._why(run)}")
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError(
                    f"the virtual board did not start in {self.start_timeout:g} s "
                    f"(log: {run / 'test.log'})"
                )
            time.sleep(0.05)
        self.path = json.loads(ready.read_text())["path"]
        return self.path

    def _why(self, run: Path) -> str:
        if self._error is not None:
            return f"{type(self._error).__name__}: {self._error}"
        if self._run is not None and self._run.message:
            return f"{self._run.message} (log: {run / 'test.log'})"
        return f"see {run / 'test.log'}"

    def close(self, timeout: float = 60.0) -> None:
        """Stop the simulation; :attr:`result` gets its figures. Raises if it failed."""
        if self._thread is None:
            return
        self._stop.touch()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"the virtual board did not stop in {timeout:g} s")
        self._thread = None
        if self._run is not None:
            self.result = dict(self._run.detail or {})
        if self._error is not None or self._run is None or not self._run.passed:
            why = self._why(self._rundir)
            raise RuntimeError(f"the virtual board's simulation failed: {why}")
        shutil.rmtree(self._rundir, ignore_errors=True)  # kept only when it failed
