"""The Verilator regression on a Dask cluster (``spikeforge regress --workers N``/``--scheduler``).

:func:`run_on_cluster` runs what :func:`~spikeforge.sim.regress.run_config` runs one config
after another as tasks: each config's build is one task, each of its seeds and protocol checks
one task that depends on the build (and gets the :class:`~spikeforge.sim.rtl_runner.Build`, which
Dask pickles with cloudpickle, ``emit`` lambda and all); the digits network is one task. The
results come back in the order and shape of the sequential run, so the summary table and JSON
differ only in timings.

Nothing is lost to the cluster: a task whose worker died is run again by the scheduler (its
``allowed-failures``; Dask's ``retries`` only run again a task that raised, such as a build
error, which would fail alike) and after that reported as a failed run naming ``KilledWorker``
(so may a task that merely waited on that worker, each time it died); a build
that fails fails every run of its config with the build's error; when no task finishes for
``task_timeout`` seconds, the unfinished ones are cancelled and reported failed. The workers
must see the build folders at the same paths (one machine, or a shared file system).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distributed import Client, Future, as_completed

from spikeforge.hw.params import CoreParams
from spikeforge.sim.regress import (
    DIGITS_NAME,
    PROTOCOL_CHECKS,
    ConfigRun,
    DigitsRun,
    MatrixRun,
    Tick,
    run_check,
    run_digits,
    run_seed,
    same_answers,
)
from spikeforge.sim.rtl_runner import Build, RunResult, build_core, build_fast_core

__all__ = ["TASK_TIMEOUT", "run_on_cluster"]

TASK_TIMEOUT = 3600.0
"""Seconds without any finished task after which the unfinished ones are cancelled."""
POLL = 0.1
"""Seconds between looks for a finished task."""


def _no_tick(_: str) -> None:
    return None


@dataclass(frozen=True)
class _Task:
    """What a future computes: a build, a seed, a protocol check or the digits run."""

    kind: str  # "build", "seed", "check" or "digits"
    label: str  # the progress bar's description (as run_config's)


@dataclass(frozen=True)
class _Outcome:
    value: Any = None
    error: str = ""  # empty: ``value`` is the result


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _failed(folder: Path, message: str) -> RunResult:
    return RunResult(passed=False, message=message, cycles=0, seconds=0.0, folder=folder)


def _no_build(top: str, folder: Path, config_hash: str) -> Build:
    """The stand-in of a build that did not finish (its config's runs all failed)."""
    return Build(top, folder, config_hash, 0.0, cached=False)


def run_on_cluster(
    client: Client,
    configs: Sequence[tuple[str, CoreParams]],
    root: Path,
    *,
    seeds: Sequence[int],
    steps: int = 2,
    density: float = 0.5,
    stall: float = 0.3,
    corrupt: bool = False,
    waves_on_failure: bool = True,
    checks: bool = True,
    digits: Mapping[str, Any] | None = None,
    tick: Tick = _no_tick,
    task_timeout: float = TASK_TIMEOUT,
    fast: bool = False,
    build: Callable[[CoreParams, Path], Build] | None = None,
    seed_run: Callable[..., RunResult] = run_seed,
    check_run: Callable[..., RunResult] = run_check,
    digits_run: Callable[..., DigitsRun] = run_digits,
) -> list[ConfigRun]:
    """Run every ``(name, params)`` of ``configs`` in ``root/<name>`` like
    :func:`~spikeforge.sim.regress.run_config` (same keywords), and with ``digits`` (keywords
    of :func:`~spikeforge.sim.regress.run_digits`) the digits network in ``root/digits``, on
    ``client``'s workers. Returns one :class:`MatrixRun` per config in ``configs``' order, then
    the :class:`DigitsRun`; ``tick`` is called as each seed, check and digits run finishes.

    ``fast``: the seeds through the fast transactors and, with ``checks``, the first seed again
    through cocotbext-axi on the same build, its answers compared (check ``"axi"``), as
    :func:`~spikeforge.sim.regress.run_config` does.

    ``build``, ``seed_run``, ``check_run`` and ``digits_run`` are the task bodies (the real
    ones by default: :func:`~spikeforge.sim.rtl_runner.build_fast_core` when ``fast``, else
    :func:`~spikeforge.sim.rtl_runner.build_core`; the tests give cheap ones).
    """
    if build is None:
        build = build_fast_core if fast else build_core
    transactors = {"fast": fast, "record": fast}  # as run_config passes them
    root = Path(root).resolve()  # the workers' working folder may be another
    token = uuid.uuid4().hex[:8]
    tasks: dict[Future, _Task] = {}
    builds: list[Future] = []
    runs: list[list[tuple[int, Future]]] = []
    protocol: list[list[tuple[str, Future]]] = []
    for name, params in configs:
        folder = root / name
        b = client.submit(build, params, folder, key=f"regress-build-{name}-{token}")
        tasks[b] = _Task("build", f"{name} build")
        builds.append(b)
        runs.append([])
        for seed in seeds:
            fut = client.submit(
                seed_run,
                b,
                params,
                folder,
                seed,
                steps=steps,
                density=density,
                stall=stall,
                corrupt=corrupt,
                waves_on_failure=waves_on_failure,
                **transactors,
                key=f"regress-seed-{name}-{seed}-{token}",
            )
            tasks[fut] = _Task("seed", f"{name} seed {seed}")
            runs[-1].append((seed, fut))
        protocol.append([])
        if fast and checks and seeds:
            fut = client.submit(
                seed_run,
                b,
                params,
                folder,
                seeds[0],
                steps=steps,
                density=density,
                stall=stall,
                corrupt=corrupt,
                waves_on_failure=False,
                record=True,
                key=f"regress-axi-{name}-{token}",
            )
            tasks[fut] = _Task("check", f"{name} axi")
            protocol[-1].append(("axi", fut))
        for check in PROTOCOL_CHECKS if checks else ():
            fut = client.submit(
                check_run,
                b,
                params,
                folder,
                check,
                density=density,
                stall=stall,
                key=f"regress-check-{name}-{check}-{token}",
            )
            tasks[fut] = _Task("check", f"{name} {check}")
            protocol[-1].append((check, fut))
    digits_fut, digits_seed = None, 0
    if digits is not None:
        digits_seed = int(digits.get("seed", 0))
        digits_fut = client.submit(
            digits_run, root / "digits", **digits, key=f"regress-digits-{token}"
        )
        tasks[digits_fut] = _Task("digits", "digits")

    outcomes = _collect(client, tasks, tick, task_timeout)

    results: list[ConfigRun] = []
    for i, (name, params) in enumerate(configs):
        folder = root / name
        built = outcomes[builds[i]]
        b = built.value if not built.error else _no_build(params.name, folder, params.core_hash)
        out = MatrixRun(name, b)
        for seed, fut in runs[i]:
            out.runs.append((seed, _result(built, outcomes[fut], folder / f"seed-{seed}")))
        for check, fut in protocol[i]:
            result = _result(built, outcomes[fut], folder / check)
            if check == "axi" and out.runs and out.runs[0][1].passed and result.passed:
                result = same_answers(out.runs[0][1], result)
            out.checks.append((check, result))
        results.append(out)
    if digits_fut is not None:
        done = outcomes[digits_fut]
        if done.error:
            folder = root / "digits"
            failed = DigitsRun(DIGITS_NAME, _no_build("spikeforge_rack", folder, ""))
            failed.runs.append((digits_seed, _failed(folder / f"seed-{digits_seed}", done.error)))
            results.append(failed)
        else:
            results.append(done.value)
    return results


def _result(built: _Outcome, done: _Outcome, folder: Path) -> RunResult:
    """A run's result, or a failed one saying why there is none."""
    if built.error:
        return _failed(folder, f"build failed: {built.error}")
    if done.error:
        return _failed(folder, done.error)
    return done.value


def _collect(
    client: Client, tasks: Mapping[Future, _Task], tick: Tick, task_timeout: float
) -> dict[Future, _Outcome]:
    """Every task's outcome, gathered as they finish; when none finishes for ``task_timeout``
    seconds, the rest are cancelled, with that as their error."""
    outcomes: dict[Future, _Outcome] = {}
    pending = as_completed(list(tasks))
    last = time.monotonic()
    late = ""
    while not pending.is_empty():
        if pending.has_ready():
            fut = next(pending)
            last = time.monotonic()
            if late and fut.cancelled():
                outcome = _Outcome(error=late)
            elif fut.status in ("finished", "error", "cancelled"):
                outcome = _outcome(fut, task_timeout)
            else:  # lost with its worker as it finished: the scheduler computes it again
                pending.add(fut)
                continue
            outcomes[fut] = outcome
            fut.release()  # got it: the cluster need not compute it again if a worker dies
            if tasks[fut].kind != "build":
                tick(tasks[fut].label)
        elif not late and time.monotonic() - last > task_timeout:
            late = f"cancelled: no build or run finished within --task-timeout {task_timeout:g} s"
            client.cancel([f for f in tasks if not f.done()])
        else:
            time.sleep(POLL)
    return outcomes


def _outcome(fut: Future, timeout: float) -> _Outcome:
    if fut.status == "finished":
        try:
            return _Outcome(value=fut.result(timeout=timeout))
        except Exception as exc:  # lost with its worker, and not computed again in time
            return _Outcome(error=_error(exc))
    if fut.status == "error":
        return _Outcome(error=_error(fut.exception()))
    return _Outcome(error=f"{fut.status}: the task did not finish")
