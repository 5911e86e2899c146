"""Evaluate one design point: accuracy, cycles, resources, energy and off-chip traffic.

The sweep (:mod:`spikeforge.codesign.search`) runs a point as separate Dask tasks, its stages:

1. **config and mapping** (:func:`plan_point`, in the sweep's process) -- the point's
   :class:`~spikeforge.sw.config.SnnConfig` and the mapping compiler's placement on ``cores``
   cores (rejected: the point fails with the reason);
2. **accuracy** (:func:`train_stage`) -- integer on-chip training with the golden model, batch
   1, exactly what the RTL learns (bit-exact, docs/verification.md), then the test split's
   accuracy; the trained model's spikes on ``activity_samples`` test samples are kept for the
   next stages. Cached per network config (the core count does not change what is learnt);
3. **resources** (:func:`core_stage` per core shape, :func:`glue_stage` for the interconnect)
   -- Yosys ``synth_ecp5`` (:mod:`spikeforge.codesign.resources`);
4. **cycles, energy, traffic and the record** (:func:`finish_point`) --
   :func:`~spikeforge.hw.array_cycles.array_step_cycles` on those spike trains (exact against
   Verilator), averaged per training sample and per inference pass;
   :mod:`spikeforge.codesign.energy` and :mod:`spikeforge.codesign.traffic` on the mean spike
   counts (estimates); the resources composed.

A stage that fails (invalid point, training diverged or timed out, synthesis error or timeout)
ends the point with ``status = "failed"`` and its reason; what was measured before is kept.
Stages 2 and 3 never raise: a failure comes back as ``{"error": reason}``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from spikeforge.codesign.space import DesignSpace, point_config, point_id

__all__ = [
    "DIVERGED_FACTOR",
    "PointFailed",
    "core_stage",
    "finish_point",
    "generate_command",
    "glue_stage",
    "plan_point",
    "train_stage",
]

DIVERGED_FACTOR = 1.5
"""Training has diverged when the test accuracy is at most this times chance (1 / classes)."""
ACTIVITY_SAMPLES = 16


class PointFailed(RuntimeError):
    """A stage of a point failed; the message is the recorded reason."""


def generate_command(space: DesignSpace, params: Mapping[str, Any], network_toml: str) -> str:
    """The ``spikeforge generate`` command that writes this point's array."""
    flags = [
        f"--cores {params['cores']}",
        f"--lanes {params['lanes']}",
        f"--w-bits {params['w_bits']}",
        f"--g-bits {params['g_bits']}",
        f"--timesteps {params['timesteps']}",
        f"--bptt {params['bptt']}",
        f"--rounding {params['rounding']}",
        f"--surrogate {params['surrogate']}",
    ]
    if params["v_bits"] != "auto":
        flags.append(f"--v-bits {params['v_bits']}")
    device = space.setting("hardware", "device", "85k")
    return (
        f"spikeforge generate --network {network_toml} {' '.join(flags)} --device {device} "
        f"-o build/point-{point_id(space, params)}"
    )


def _train(cfg, training: Mapping[str, Any], cache_dir: Path) -> dict[str, Any]:
    """Train (or load the cached result of) ``cfg``: accuracy and the activity sample."""
    epochs = training.get("epochs", 4)
    n_train = training.get("train_samples", 0)
    n_act = training.get("activity_samples", ACTIVITY_SAMPLES)
    timeout = training.get("train_timeout", 3600)
    entry = cache_dir / "train" / f"{cfg.config_hash}-e{epochs}-n{n_train}-a{n_act}"
    entry.parent.mkdir(parents=True, exist_ok=True)
    result = entry.with_suffix(".json")
    with FileLock(str(entry) + ".lock"):
        if result.is_file():
            return {**json.loads(result.read_text()), "cached": True}
        out = _train_uncached(cfg, epochs, n_train, n_act, timeout, entry.with_suffix(".pt"))
        result.write_text(json.dumps(out) + "\n")
        return {**out, "cached": False}


def _train_uncached(cfg, epochs, n_train, n_act, timeout, checkpoint: Path) -> dict[str, Any]:
    import torch

    from spikeforge.sw.checkpoint import load_checkpoint
    from spikeforge.sw.data import load_dataset
    from spikeforge.sw.encoders import quantize
    from spikeforge.sw.golden import GoldenModel
    from spikeforge.sw.train import eval_inputs, train_int

    torch.set_num_threads(1)
    ds = load_dataset("digits")
    if n_train:
        ds = dataclasses.replace(ds, x_train=ds.x_train[:n_train], y_train=ds.y_train[:n_train])
    t0 = time.monotonic()

    def check_time(row: Mapping[str, Any]) -> None:
        if time.monotonic() - t0 > timeout:
            raise PointFailed(
                f"training timed out: {time.monotonic() - t0:.0f} s > train_timeout {timeout} s "
                f"after epoch {row['epoch']} of {epochs}"
            )

    res = train_int(cfg, ds, epochs, checkpoint=checkpoint, resume=True, on_epoch=check_time)
    _, blob = load_checkpoint(checkpoint, cfg, "int")
    model = GoldenModel.from_state(cfg, blob["state"])
    x = eval_inputs(cfg, quantize(ds.x_test[:n_act], ds.x_max, cfg.in_bits))
    traces = model.forward(x)
    trains = [x.tolist()] + [tr.s.tolist() for tr in traces]  # [layer][sample][t][neuron]
    return {
        "accuracy": res.test_accuracy,
        "train_accuracy": res.train_accuracy,
        "history": res.history,
        "classes": ds.n_classes,
        "train_seconds": round(time.monotonic() - t0, 2),
        "spikes": [[[sum(row) for row in sample] for sample in layer] for layer in trains],
        "trains": [[_pack(sample) for sample in layer] for layer in trains],
    }


def _pack(sample: list[list[int]]) -> list[str]:
    """A sample's 0/1 spike rows ``[T][n]`` as one hex string per timestep (bit i: neuron i)."""
    return [format(sum(b << i for i, b in enumerate(row)), "x") for row in sample]


def _unpack(rows: list[str], n: int) -> list[list[int]]:
    return [[(int(h, 16) >> i) & 1 for i in range(n)] for h in rows]


def _cycles(cores, layers, net, trained) -> tuple[float, float]:
    from spikeforge.hw.array_cycles import array_step_cycles

    sizes = net.layers
    n_samples = len(trained["trains"][0])
    train, infer = 0.0, 0.0
    for k in range(n_samples):
        spikes = [_unpack(trained["trains"][i][k], n) for i, n in enumerate(sizes)]
        c = array_step_cycles(cores, layers, spikes)
        train += c.step
        infer += c.infer
    return train / n_samples, infer / n_samples


def _activity(net, trained) -> list[list[float]]:
    """Mean spikes per timestep: ``[layer boundary][t]`` (0: the input)."""
    out = []
    for layer in trained["spikes"]:
        n = len(layer)
        out.append([sum(sample[t] for sample in layer) / n for t in range(net.timesteps)])
    return out


def _worker() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def _guarded(stage: str, fn, *args) -> dict[str, Any]:
    """``fn(*args)`` with the worker's name; a failure becomes ``{"error": reason}``."""
    from spikeforge.hw.synth import SynthError

    t0 = time.monotonic()
    try:
        out = dict(fn(*args))
    except PointFailed as exc:
        out = {"error": str(exc)}
    except SynthError as exc:
        out = {"error": f"synthesis failed: {str(exc).splitlines()[0]}"}
    except Exception as exc:  # a point's failure is recorded, never stops the sweep
        out = {"error": f"{stage} failed: {type(exc).__name__}: {exc}"}
    return {**out, "worker": _worker(), "stage_seconds": round(time.monotonic() - t0, 2)}


def train_stage(net, training: Mapping[str, Any], cache_dir: str) -> dict[str, Any]:
    """Stage 2 (cached per network config and budget); never raises."""
    return _guarded("training", _train, net, training, Path(cache_dir))


def core_stage(shape, cache_dir: str, timeout: float) -> dict[str, Any]:
    """Stage 3 for one core shape (cached by its hash); never raises."""
    from spikeforge.codesign.resources import synth_core

    out = _guarded("synthesis", synth_core, shape, Path(cache_dir) / "synth", timeout)
    return {**out, "core_hash": shape.core_hash}


def glue_stage(cores, cache_dir: str, timeout: float) -> dict[str, Any]:
    """Stage 3 for the interconnect (cached by the array hash); never raises."""
    from spikeforge.codesign.resources import synth_glue

    return _guarded("synthesis", synth_glue, cores, Path(cache_dir) / "synth", timeout)


def plan_point(
    space: DesignSpace, params: Mapping[str, Any], network_toml: str
) -> tuple[dict[str, Any], Any, list]:
    """Stage 1: the record skeleton, the network config and the cores (``None`` and ``[]``
    when the point is invalid: then the record is already failed with the reason)."""
    from spikeforge.codesign.mapping import map_network
    from spikeforge.sw.config import ConfigError

    params = space.complete(params)
    record: dict[str, Any] = {
        "id": point_id(space, params),
        "params": dict(params),
        "status": "ok",
        "reason": None,
        "generate_cmd": generate_command(space, params, network_toml),
        "seconds": {},
        "fmax_mhz": None,
        "fmax_status": "not run",
    }
    try:
        net = point_config(space, params)
        mapping = map_network(
            net,
            params["cores"],
            lanes=params["lanes"],
            device=space.setting("hardware", "device", "85k"),
        )
    except ConfigError as exc:
        record.update(status="failed", reason=f"invalid point: {exc}")
        return record, None, []
    record["cores_per_layer"] = list(mapping.cores_per_layer)
    return record, net, list(mapping.core_params())


def finish_point(
    record: Mapping[str, Any],
    net,
    cores: list,
    trained: Mapping[str, Any],
    core_reports: list[Mapping[str, Any]] | None,
    glue: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Stage 4, the record: accuracy, cycles, traffic, energy and resources from the
    stage results (``core_reports``/``glue`` are ``None`` without synthesis). Never raises."""
    record = {**record, "seconds": dict(record.get("seconds", {}))}
    stages = [trained, *(core_reports or []), *([glue] if glue else [])]
    record["worker"] = _worker()
    record["workers"] = sorted({s["worker"] for s in stages} | {record["worker"]})
    try:
        _finish(record, net, cores, trained, core_reports, glue)
    except PointFailed as exc:
        record.update(status="failed", reason=str(exc))
    except Exception as exc:  # recorded, never stops the sweep
        record.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
    return record


def _finish(record, net, cores, trained, core_reports, glue) -> None:
    from spikeforge.codesign.energy import energy_estimate
    from spikeforge.codesign.resources import compose
    from spikeforge.codesign.traffic import traffic_summary
    from spikeforge.hw.array import layer_groups

    if "error" in trained:
        raise PointFailed(trained["error"])
    record["seconds"]["train"] = 0.0 if trained["cached"] else trained["train_seconds"]
    record["accuracy"] = trained["accuracy"]
    record["train_cached"] = trained["cached"]
    chance = 1 / trained["classes"]
    if trained["accuracy"] <= DIVERGED_FACTOR * chance:
        raise PointFailed(
            f"training diverged: test accuracy {trained['accuracy']:.1%} <= "
            f"{DIVERGED_FACTOR} x chance ({DIVERGED_FACTOR * chance:.1%})"
        )
    t0 = time.monotonic()
    layers = layer_groups(cores, linked=True)
    train_cycles, infer_cycles = _cycles(cores, layers, net, trained)
    record["train_cycles"] = round(train_cycles)
    record["infer_cycles"] = round(infer_cycles)
    activity = _activity(net, trained)
    traffic = traffic_summary(net, layers, activity)
    record["chip_bytes"] = traffic["chip_bytes"]
    record["gpu_bptt_bytes"] = traffic["gpu_bptt_bytes"]
    record["dram_saving"] = traffic["saving"]
    energy = energy_estimate(cores, activity, host_bytes=traffic["chip_bytes"])
    record["energy_nj"] = energy.train_pj / 1000
    record["infer_energy_nj"] = energy.infer_pj / 1000
    record["samples_per_joule"] = energy.samples_per_joule
    record["energy_breakdown_pj"] = energy.breakdown
    record["seconds"]["models"] = round(time.monotonic() - t0, 2)
    if core_reports is None:
        return
    for rep in [*core_reports, glue]:
        if "error" in rep:
            raise PointFailed(rep["error"])
    res = compose(cores, {r["core_hash"]: r for r in core_reports}, glue)
    record.update({k: res[k] for k in ("luts", "ffs", "brams", "dsps")})
    record["synth_parts"] = res["parts"]
    record["seconds"]["synth"] = res["synth_seconds"]
