"""The Verilator regression: matrix configs over several seeds, and the digits training run.

Used by ``tests/test_rtl.py`` (the CI subset) and ``spikeforge regress`` (any subset, ``make
regress-full``). Every config gets one build folder (``<root>/<name>``, reused while its hash
and Verilog are unchanged) and one run folder per seed (``seed-<n>``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeforge.hw.params import CoreParams
from spikeforge.sim import fast_tb
from spikeforge.sim.fuzz import FuzzConfig
from spikeforge.sim.matrix import DIGITS_NET
from spikeforge.sim.rtl_runner import (
    Build,
    RunResult,
    build_array,
    build_core,
    build_fast_array,
    build_fast_core,
    build_rack,
    run,
)
from spikeforge.sw.config import SnnConfig

__all__ = [
    "DIGITS_NAME",
    "DigitsRun",
    "MatrixRun",
    "digits_cores",
    "run_array",
    "run_check",
    "run_config",
    "run_digits",
    "run_epoch",
    "run_fuzz",
    "run_seed",
    "same_answers",
    "seed_case",
    "summary",
]

Tick = Callable[[str], object]
"""``tick(description)`` is called after every simulator run (a progress bar's update)."""


def _no_tick(_: str) -> None:
    return None


@dataclass
class ConfigRun:
    """One config's build and its runs (one per seed)."""

    name: str
    build: Build
    runs: list[tuple[int, RunResult]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(r.passed for _, r in self.runs)

    @property
    def cycles(self) -> int:
        return sum(r.cycles for _, r in self.runs)

    @property
    def seconds(self) -> float:
        return sum(r.seconds for _, r in self.runs)

    @property
    def cycles_per_second(self) -> float:
        return self.cycles / self.seconds if self.seconds else 0.0

    @property
    def rw_checked(self) -> int:
        """Checked read-during-write accesses of all runs (:mod:`~spikeforge.hw.rw_check`)."""
        return sum(int((r.detail or {}).get("rw_checked", 0)) for _, r in self.runs)

    @property
    def failures(self) -> list[tuple[int, RunResult]]:
        return [(s, r) for s, r in self.runs if not r.passed]

    def report(self) -> str:
        """Every failing seed's first-mismatch report (empty when all passed)."""
        return "\n\n".join(f"{self.name}, seed {s}:\n{r.report()}" for s, r in self.failures)

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.name,
            "config_hash": self.build.config_hash,
            "passed": self.passed,
            "tests": len(self.runs),
            "failed": len(self.failures),
            "cycles": self.cycles,
            "sim_seconds": round(self.seconds, 3),
            "cycles_per_second": round(self.cycles_per_second),
            "rw_checked": self.rw_checked,
            "build_seconds": round(self.build.seconds, 1),
            "build_cached": self.build.cached,
            "build_dir": str(self.build.folder),
            "runs": [
                {
                    "seed": s,
                    "passed": r.passed,
                    "cycles": r.cycles,
                    "seconds": round(r.seconds, 3),
                    "message": r.message,
                    "fst": str(r.fst) if r.fst else None,
                    **{k: v for k, v in (r.detail or {}).items() if k not in _RUN_KEYS},
                }
                for s, r in self.runs
            ],
        }


_RUN_KEYS = {"passed", "message", "cycles", "seconds"}


PROTOCOL_CHECKS = {
    "cycles": "spikeforge.sim.tb_cycles",
    "abort": "spikeforge.sim.tb_abort",
    "length": "spikeforge.sim.tb_length",
}
"""Testbenches each matrix config also runs once (seed 0), for what training alone does not
show -- holes ``make mutate`` found: the COUNTERS against the cycle formulas, an idle ABORT
changes nothing, a WRITE one row too long is refused and writes nothing."""


@dataclass
class MatrixRun(ConfigRun):
    """A core config trained for some steps per seed (``tb_core``), and its
    :data:`PROTOCOL_CHECKS` (``checks``: name and result)."""

    checks: list[tuple[str, RunResult]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return super().passed and all(r.passed for _, r in self.checks)

    def report(self) -> str:
        bad = [f"{self.name}, {n}:\n{r.report()}" for n, r in self.checks if not r.passed]
        return "\n\n".join([t for t in [super().report()] if t] + bad)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["passed"] = self.passed
        out["checks"] = {n: {"passed": r.passed, "message": r.message} for n, r in self.checks}
        return out


class DigitsRun(ConfigRun):
    """The digits network on one core per layer (``tb_digits``)."""


DIGITS_NAME = "digits-64-64-10"
"""The :class:`DigitsRun`'s name (:func:`run_digits`)."""


def seed_case(
    params: CoreParams,
    seed: int,
    *,
    steps: int = 2,
    density: float = 0.5,
    stall: float = 0.3,
    corrupt: bool = False,
    record: bool = False,
) -> dict[str, Any]:
    """The ``tb_core`` (``tb_fast``) case of one seed: train ``steps`` steps and check every
    quantity (``record``: write every answer packet to ``answers.json``)."""
    return {
        "core": params.to_dict(),
        "seed": seed,
        "steps": steps,
        "density": density,
        "stall": stall,
        "corrupt": corrupt,
        "record": record,
    }


def run_seed(
    b: Build,
    params: CoreParams,
    folder: Path,
    seed: int,
    *,
    fast: bool = False,
    waves_on_failure: bool = True,
    **case: Any,
) -> RunResult:
    """Train one seed on build ``b`` in ``folder/seed-<seed>`` (``case``: :func:`seed_case`'s
    keywords): through the fast transactors (``fast``; ``b`` is a
    :func:`~spikeforge.sim.rtl_runner.build_fast_core` build) or through cocotbext-axi (any
    build of the core; in ``folder/seed-<seed>-axi`` when ``b`` is a fast one)."""
    wrapped = b.top == fast_tb.TOP
    name = f"seed-{seed}" + ("-axi" if wrapped and not fast else "")
    return run(
        b,
        folder / name,
        seed_case(params, seed, **case),
        testbench="spikeforge.sim.tb_fast" if fast else "spikeforge.sim.tb_core",
        waves_on_failure=waves_on_failure,
    )


def run_check(
    b: Build,
    params: CoreParams,
    folder: Path,
    check: str,
    *,
    density: float = 0.5,
    stall: float = 0.3,
) -> RunResult:
    """One of the :data:`PROTOCOL_CHECKS` on build ``b`` (seed 0) in ``folder/<check>``."""
    case = {"core": params.to_dict(), "seed": 0, "density": density, "stall": stall}
    return run(b, folder / check, case, testbench=PROTOCOL_CHECKS[check], waves_on_failure=False)


def same_answers(fast: RunResult, axi: RunResult) -> RunResult:
    """``axi`` judged against ``fast`` (both run with ``record``): passed when it passed and
    every answer packet it received equals the fast run's, word for word."""
    if not axi.passed:
        return axi
    got = [json.loads((r.folder / "answers.json").read_text()) for r in (fast, axi)]
    if got[0] == got[1]:
        return axi
    n = next((i for i, (a, b) in enumerate(zip(*got, strict=False)) if a != b), None)
    where = f"answer packet {n}" if n is not None else f"{len(got[0])} vs {len(got[1])} packets"
    return dataclasses.replace(
        axi, passed=False, message=f"cocotbext-axi and the fast transactors differ: {where}"
    )


def run_config(
    name: str,
    params: CoreParams,
    folder: Path,
    *,
    seeds: Sequence[int],
    steps: int = 2,
    density: float = 0.5,
    stall: float = 0.3,
    corrupt: bool = False,
    tick: Tick = _no_tick,
    waves_on_failure: bool = True,
    checks: bool = True,
    fast: bool = False,
) -> MatrixRun:
    """Build ``params`` in ``folder`` and train ``steps`` steps for every seed (a failing seed
    is run again with tracing, for its waveform, unless ``waves_on_failure`` is False), then
    (``checks``) the :data:`PROTOCOL_CHECKS` once.

    ``fast``: the seeds run through the fast transactors (:mod:`~spikeforge.sim.fast_tb`), and
    with ``checks`` the first seed also through cocotbext-axi, the reference BFM, on the same
    build: its every answer packet must equal the fast run's (check ``"axi"``)."""
    b = build_fast_core(params, folder) if fast else build_core(params, folder)
    out = MatrixRun(name, b)
    case = {"steps": steps, "density": density, "stall": stall, "corrupt": corrupt}
    for seed in seeds:
        result = run_seed(
            b,
            params,
            folder,
            seed,
            fast=fast,
            record=fast,
            waves_on_failure=waves_on_failure,
            **case,
        )
        out.runs.append((seed, result))
        tick(f"{name} seed {seed}")
    if fast and checks and seeds:
        seed, first = out.runs[0]
        axi = run_seed(b, params, folder, seed, record=True, waves_on_failure=False, **case)
        out.checks.append(("axi", same_answers(first, axi)))
        tick(f"{name} axi")
    for check in PROTOCOL_CHECKS if checks else ():
        out.checks.append(
            (check, run_check(b, params, folder, check, density=density, stall=stall))
        )
        tick(f"{name} {check}")
    return out


def run_array(
    cores: Sequence[CoreParams],
    folder: Path,
    *,
    seed: int = 0,
    steps: int = 3,
    density: float = 0.5,
    stall: float = 0.3,
    check_every: int = 1,
    link_stall: int = 0,
    every_quantity: bool = True,
    grads: bool = True,
) -> tuple[Build, RunResult]:
    """Build a :class:`~spikeforge.hw.array.CoreArray` of ``cores`` (``link_stall``: stall
    gates on its links) in ``folder`` and train ``steps`` steps on it (``sim/tb_array.py``):
    every quantity of every core checked (``every_quantity``; False: the weights only), the
    gradients too with ``grads`` (the checked steps' cycles are then not measured)."""
    b = build_array(list(cores), folder, link_stall=link_stall)
    case = {
        "cores": [p.to_dict() for p in cores],
        "seed": seed,
        "steps": steps,
        "density": density,
        "stall": stall,
        "check_every": check_every,
        "every_quantity": every_quantity,
        "grads": grads,
        "kilo_synapse_passes": _synapses(cores) * (2 * steps + 1) / 1000,
    }
    return b, run(b, folder / f"seed-{seed}", case, testbench="spikeforge.sim.tb_array")


def _synapses(cores: Sequence[CoreParams]) -> int:
    return sum(p.n_in * p.n_out for p in cores)


def run_fuzz(
    cores: Sequence[CoreParams], folder: Path, *, cfg: FuzzConfig, stall: float = 0.3
) -> tuple[Build, RunResult]:
    """Build one core (or an array of several) in ``folder`` and fuzz its host port while it
    trains (``sim/tb_fuzz.py``, :mod:`spikeforge.sim.fuzz`); the report is in the result's
    ``detail``."""
    cores = list(cores)
    b = build_core(cores[0], folder) if len(cores) == 1 else build_array(cores, folder)
    case = {
        "cores": [p.to_dict() for p in cores],
        "fuzz": dataclasses.asdict(cfg),
        "packets": cfg.packets,
        "stall": stall,
    }
    run_folder = folder / f"fuzz-seed-{cfg.seed}"
    return b, run(b, run_folder, case, testbench="spikeforge.sim.tb_fuzz")


def digits_cores(lanes: Sequence[int] = (8, 10)) -> list[CoreParams]:
    """The digits network (:data:`~spikeforge.sim.matrix.DIGITS_NET`), one core per layer."""
    net = SnnConfig(**DIGITS_NET)
    return [CoreParams.checked(CoreParams(net=net, layer=n, lanes=p)) for n, p in enumerate(lanes)]


def run_digits(
    folder: Path,
    *,
    samples: int = 50,
    test_samples: int | None = None,
    stall: float = 0.2,
    seed: int = 0,
    tick: Tick = _no_tick,
) -> DigitsRun:
    """Train the digits network on the RTL for ``samples`` samples (weights checked after each),
    then predict ``test_samples`` of the test split (``None``: all of it)."""
    cores = digits_cores()
    b = build_rack(cores, folder)
    case = {
        "cores": [p.to_dict() for p in cores],
        "samples": samples,
        "test_samples": test_samples,
        "stall": stall,
        "seed": seed,
    }
    out = DigitsRun(DIGITS_NAME, b)
    out.runs.append(
        (seed, run(b, folder / f"seed-{seed}", case, testbench="spikeforge.sim.tb_digits"))
    )
    tick("digits")
    return out


def run_epoch(
    folder: Path,
    *,
    samples: int = 1437,
    test_samples: int | None = None,
    checkpoints: int = 10,
    stall: float = 0.2,
    seed: int = 0,
    tick: Tick = _no_tick,
) -> DigitsRun:
    """Train the digits network on a two-core array for ``samples`` samples (one epoch: 1,437)
    through the fast transactors, every weight checked at ``checkpoints`` points and at the
    end, then predict ``test_samples`` of the test split (``None``: all of it); see
    :mod:`spikeforge.sim.epoch`."""
    cores = [CoreParams.checked(dataclasses.replace(p, linked=True)) for p in digits_cores()]
    b = build_fast_array(cores, folder)
    case = {
        "cores": [p.to_dict() for p in cores],
        "samples": samples,
        "test_samples": test_samples,
        "checkpoints": checkpoints,
        "stall": stall,
        "seed": seed,
    }
    out = DigitsRun("digits-epoch-array", b)
    run_folder = folder / f"seed-{seed}"
    out.runs.append((seed, run(b, run_folder, case, testbench="spikeforge.sim.tb_epoch")))
    tick("digits epoch")
    return out


def summary(results: Sequence[ConfigRun]) -> list[dict[str, Any]]:
    """Rows of the summary table: config, tests, cycles, sim speed, checked read-during-write
    accesses, build time, pass/fail."""
    return [
        {
            "config": r.name,
            "tests": len(r.runs),
            "cycles": r.cycles,
            "cycles/s": round(r.cycles_per_second),
            "rw checked": r.rw_checked,
            "build s": "cached" if r.build.cached else f"{r.build.seconds:.0f}",
            "result": "pass" if r.passed else f"FAIL ({len(r.failures)})",
        }
        for r in results
    ]
