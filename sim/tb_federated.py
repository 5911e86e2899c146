"""cocotb testbench: federated rounds and data-parallel mini-batches on a core array through the
fast transactors.

The design is the array inside ``spikeforge_fast_tb`` (:mod:`~spikeforge.sim.fast_tb`). A
planning pass records the packets (:class:`~spikeforge.sim.plan.ArrayRecorder`), the wrapper
plays them from ``cmd.hex`` with ``stall`` idle and backpressure cycles, and a checking pass
runs the same scenario over the captured answers (:class:`~spikeforge.sim.plan.ArrayReplayer`).

Case keys: ``cores`` (``CoreParams.to_dict`` per core), ``dataset`` (a spec), ``validation``
(the training split less its stratified fifth, :meth:`~spikeforge.sw.data.Dataset.holdout`),
``stall``, ``seed`` (of the idle/backpressure generators), ``steps`` (training steps in all: the
simulated-time limit) and ``kind``:

* ``"federation"`` -- :func:`~spikeforge.sim.federation.federate` with ``federation`` (its
  keywords; ``corrupt`` a ``[worker, round]`` pair or ``null``): every worker round and every
  average compared with the golden federation;
* ``"data_parallel"`` -- :func:`~spikeforge.sim.data_parallel_rtl.data_parallel` with
  ``data_parallel`` (its keywords; ``corrupt`` a mini-batch or ``null``): every chip's
  accumulators and, after every mini-batch, every weight and LFSR state compared with one golden
  chip training the whole mini-batch;
* ``"round"`` -- one :func:`~spikeforge.sim.federated_rtl.rtl_local_round` of ``task`` (the
  :class:`~spikeforge.sw.federated.RoundTask`'s fields as lists); ``result.json`` gets the
  weights and LFSR states read back (``weights``, ``lfsr``) for the caller to compare.
"""

from __future__ import annotations

import time
from pathlib import Path

import cocotb
import torch

from spikeforge.hw.params import CoreParams
from spikeforge.sim import fast_tb
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.data_parallel_rtl import data_parallel
from spikeforge.sim.federated_rtl import rtl_local_round
from spikeforge.sim.federation import federate
from spikeforge.sim.harness import Outcome, arm_fast, case_timeout_ms, load_case, play_fast
from spikeforge.sim.plan import ArrayRecorder, ArrayReplayer
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import quantize
from spikeforge.sw.federated import RoundTask


def round_task(cfg, spec: dict) -> RoundTask:
    """The :class:`RoundTask` of a ``"round"`` case's ``task``."""
    return RoundTask(
        cfg=cfg,
        worker=int(spec["worker"]),
        round=int(spec["round"]),
        weights=tuple(torch.tensor(w, dtype=torch.int64) for w in spec["weights"]),
        lfsr=tuple(torch.tensor(s, dtype=torch.int64) for s in spec["lfsr"]),
        lr_shift=int(spec["lr_shift"]),
        indices=torch.tensor(spec["indices"], dtype=torch.int64),
        local_epochs=int(spec["local_epochs"]),
    )


def scenario(case: dict, cores: list[CoreParams]):
    """``async run(session, check, info) -> figures`` for the case's kind (``info`` gets the
    figures so far, where the scenario has any)."""
    cfg = cores[0].net
    ds = load_dataset(case["dataset"], timesteps=cfg.timesteps)
    if case.get("validation"):
        ds = ds.holdout()
    x, y = quantize(ds.x_train, ds.x_max, cfg.in_bits), ds.y_train
    if case["kind"] == "federation":
        kw = dict(case["federation"])
        kw["corrupt"] = tuple(kw["corrupt"]) if kw.get("corrupt") is not None else None

        async def run(session, check, info=lambda figures: None):
            return await federate(session, x, y, check=check, info=info, **kw)

    elif case["kind"] == "data_parallel":
        kw = dict(case["data_parallel"])

        async def run(session, check, info=lambda figures: None):
            return await data_parallel(session, x, y, check=check, info=info, **kw)

    elif case["kind"] == "round":
        task = round_task(cfg, case["task"])

        async def run(session, check, info=lambda figures: None):
            out = await rtl_local_round(session, task, x, y)
            return {
                "weights": [w.tolist() for w in out["weights"]],
                "lfsr": [s.tolist() for s in out["lfsr"]],
                "samples": out["samples"],
            }

    else:
        raise ValueError(
            f"case kind must be 'federation', 'data_parallel' or 'round', not {case['kind']!r}"
        )
    return run


# About 10x the simulated time of a digits 64-64-10 training step (0.23 ms); a 64-16-10 step
# with its share of the round's writes and reads takes about 0.03 ms.
@cocotb.test(timeout_time=case_timeout_ms({"steps": 2.5}), timeout_unit="ms")
async def federated_rounds_bit_exact(dut):
    case = load_case()
    cores = [CoreParams.from_dict(c) for c in case["cores"]]
    folder = Path(case["result"]).parent
    t0 = time.perf_counter()
    run = scenario(case, cores)
    plan = ArrayRecorder(cores)
    await run(ArraySession(cores, plan.send, plan.recv, streamed=False), False)
    fast_tb.write_commands(folder / "cmd.hex", plan.packets)
    plan_seconds = time.perf_counter() - t0
    await arm_fast(dut, stall=case["stall"], seed=case["seed"])
    async with Outcome(case, dut) as outcome:
        figures, answers = await play_fast(dut, folder)
        outcome.info.update(figures, plan_seconds=plan_seconds, packets=len(plan.packets))
        replay = ArrayReplayer(plan.packets, answers, f"the wrapper stopped: {figures['stopped']}")
        t0 = time.perf_counter()
        session = ArraySession(cores, replay.send, replay.recv, streamed=False)
        outcome.info.update(await run(session, True, outcome.info.update))
        outcome.info["check_seconds"] = time.perf_counter() - t0
        assert replay.complete, (
            f"{len(plan.packets) - replay.sent} packets and "
            f"{len(answers) - replay.received} answers unchecked"
        )
