"""Replicas trained as one batched program against each golden model trained alone, bit for bit."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from spikeforge.sw.checkpoint import load_checkpoint
from spikeforge.sw.config import SnnConfig
from spikeforge.sw.data import load_dataset
from spikeforge.sw.encoders import encode
from spikeforge.sw.golden import GoldenModel
from spikeforge.sw.replicas import (
    SHARED_FIELDS,
    ReplicaModel,
    ReplicaStep,
    check_replica_configs,
    train_replicas,
)
from spikeforge.sw.train import train_int

TRACE_FIELDS = ("x", "current", "u", "s", "e", "delta", "e_prev", "grad")

SMALL = SnnConfig(layers=(8, 6, 4), timesteps=5)


def _mixed(base: SnnConfig) -> list[SnnConfig]:
    """Replicas of ``base``'s shape that differ in everything else the model reads."""
    small_acc = base.g_bits + 1 + (base.in_bits if base.encoder == "direct" else 0)
    return [
        base.replace(init_seed=11, lfsr_seed=12, encoder_seed=13),
        base.replace(init_seed=21, reset="zero", rounding="nearest", surrogate="triangle"),
        # saturating accumulators (slow path) next to replicas that take the fast path
        base.replace(init_seed=31, bptt="sltt", leak_shift=2, acc_bits=small_acc, err_shift=5),
        base.replace(w_bits=6, frac_bits=2, theta=20, surrogate_shift=3, bp_shift=4, lr_shift=5),
        # full-scale weights and the largest learning rate: master weights saturate
        base.replace(init_scale=256, lr_shift=base.frac_bits, g_bits=10, lfsr_seed=99),
        base.replace(reset="zero", bptt="sltt", surrogate="triangle", target_lo=1, in_bits=5),
    ]


def _inputs(cfgs: list[SnnConfig], batch: int, step: int) -> torch.Tensor:
    """Each replica's own samples for ``step``: intensities from a seeded generator, encoded
    with that replica's encoder seed and keys."""
    out = []
    for r, cfg in enumerate(cfgs):
        gen = torch.Generator().manual_seed(1000 * step + r)
        x = torch.randint(0, 1 << cfg.in_bits, (batch, cfg.n_inputs), generator=gen)
        out.append(encode(x, 100 * step + r * batch + torch.arange(batch), cfg))
    return torch.stack(out, 0)


def _labels(cfgs: list[SnnConfig], batch: int, step: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(7 + step)
    return torch.randint(0, cfgs[0].n_outputs, (len(cfgs), batch), generator=gen)


def _same_state(a: dict, b: dict) -> bool:
    return (
        a["pending"] == b["pending"]
        and a["lr_shift"] == b["lr_shift"]
        and all(
            torch.equal(x, y)
            for key in ("weights", "lfsr_states", "grad_acc")
            for x, y in zip(a[key], b[key], strict=True)
        )
    )


def _differing(replicas: ReplicaModel, alone: list[GoldenModel]) -> list[int]:
    """Replicas whose state is not bit-identical to the golden model trained alone."""
    return [
        r
        for r, model in enumerate(alone)
        if not _same_state(replicas.state_dict(r), model.state_dict())
    ]


def _trace_mismatches(step: ReplicaStep, alone: list) -> list[tuple[int, int, str]]:
    """``(replica, layer, field)`` of every trace field that differs from the golden step's."""
    bad = []
    for r, res in enumerate(alone):
        for layer, trace in enumerate(res.traces):
            mine = step.traces[layer].replica(r)
            bad += [
                (r, layer, f)
                for f in TRACE_FIELDS
                if not torch.equal(getattr(mine, f), getattr(trace, f))
            ]
        if not torch.equal(step.e_out[r], res.e_out) or step.updated != res.updated:
            bad.append((r, -1, "e_out/updated"))
    return bad


def _errors(cfgs: list[SnnConfig], batch: int, step: int) -> torch.Tensor:
    """External output errors ``[R, B, T, n_out]`` whose signs change from timestep to timestep,
    so that a saturating accumulator's result depends on the order of its adds."""
    gen = torch.Generator().manual_seed(55 + step)
    shape = (len(cfgs), batch, cfgs[0].timesteps, cfgs[0].n_outputs)
    half = min(1 << (cfg.g_bits - 1) for cfg in cfgs)
    return torch.randint(-half, half, shape, generator=gen)


def _train_both(cfgs: list[SnnConfig], steps: int, batch: int, external: bool = False):
    replicas = ReplicaModel(cfgs)
    alone = [GoldenModel(cfg) for cfg in cfgs]
    for step in range(steps):
        x = _inputs(cfgs, batch, step)
        if external:
            e = _errors(cfgs, batch, step)
            got = replicas.train_step(x, e_out=e)
            want = [m.train_step(x[r], e_out=e[r]) for r, m in enumerate(alone)]
        else:
            y = _labels(cfgs, batch, step)
            got = replicas.train_step(x, y)
            want = [m.train_step(x[r], y[r]) for r, m in enumerate(alone)]
        assert _trace_mismatches(got, want) == [], f"step {step}"
        assert _differing(replicas, alone) == [], f"step {step}"
    return replicas, alone


CASES = {
    "mixed rate": (_mixed(SMALL), 14, 1),
    "mixed direct": (_mixed(SMALL.replace(encoder="direct")), 10, 1),
    "mixed batch 3": (_mixed(SMALL.replace(batch_size=3)), 5, 3),
    "batch 2 of 3 (update every other step)": (_mixed(SMALL.replace(batch_size=3)), 6, 2),
    "seeds only": ([SMALL.replace(init_seed=s, lfsr_seed=s + 1) for s in range(4)], 10, 1),
    "uniform zero/triangle/sltt": (
        [
            SMALL.replace(init_seed=s, reset="zero", surrogate="triangle", bptt="sltt")
            for s in range(3)
        ],
        8,
        1,
    ),
    "one replica": ([SMALL.replace(rounding="nearest", reset="zero")], 6, 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_replicas_are_bit_identical_to_each_model_alone(case):
    cfgs, steps, batch = CASES[case]
    replicas, alone = _train_both(cfgs, steps, batch)
    for r, model in enumerate(alone):
        assert _same_state(replicas.model(r).state_dict(), model.state_dict())


def test_the_cases_reach_saturation_and_both_accumulation_paths():
    """The comparison above is only as strong as what the configs exercise."""
    cfgs = _mixed(SMALL)
    replicas, _ = _train_both(cfgs, 6, 1)
    sat_acc = cfgs[2]
    assert (replicas._peak_limit[0][2] <= 0).item()  # replica 2 can never take the fast path
    assert (replicas._peak_limit[0][0] > 0).item()
    assert sat_acc.acc_bits == SMALL.g_bits + 1
    master = replicas.weights[0][4].abs().max().item()
    assert master >= (1 << (cfgs[4].master_bits - 1)) - 1  # replica 4 sits at full scale


def test_external_errors_that_change_sign_saturate_in_order():
    """Tiny accumulators fed errors whose sign changes over time: the per-timestep saturating
    adds differ from one saturated sum, and only the replicas that may saturate take them."""
    cfgs = _mixed(SMALL.replace(batch_size=2))
    cfgs.append(SMALL.replace(acc_bits=SMALL.g_bits, init_seed=77, batch_size=2))
    replicas, _ = _train_both(cfgs, 6, 2, external=True)
    fast = [(limit > 0).item() for limit in replicas._peak_limit[0]]
    assert fast[0] and not fast[2] and not fast[-1]


def test_a_falsified_replica_is_detected():
    cfgs = _mixed(SMALL)
    alone = [GoldenModel(cfg) for cfg in cfgs]
    replicas = ReplicaModel.from_models(alone)
    assert _differing(replicas, alone) == []
    # one effective weight of replica 3 off by one LSB; replica 0's LFSR of row 2 moved on
    replicas.weights[0][3, 1, 2] += 1 << cfgs[3].frac_bits
    replicas.lfsr_states[1][0, 2] ^= 1
    for step in range(4):
        x, y = _inputs(cfgs, 1, step), _labels(cfgs, 1, step)
        replicas.train_step(x, y)
        for r, m in enumerate(alone):
            m.train_step(x[r], y[r])
    assert _differing(replicas, alone) == [0, 3]


def test_from_models_mid_batch_and_runtime_lr_shifts():
    """Stacking golden models that are mid-batch with raised lr_shift registers, and raising
    them again per replica, matches the models alone."""
    cfgs = _mixed(SMALL.replace(batch_size=2))
    alone = [GoldenModel(cfg) for cfg in cfgs]
    for r, m in enumerate(alone):
        m.lr_shift = m.lr_shift + r % 2
        x = _inputs(cfgs, 1, 0)
        m.train_step(x[r], _labels(cfgs, 1, 0)[r])
    replicas = ReplicaModel.from_models(alone)
    assert replicas.pending == 1 and _differing(replicas, alone) == []
    raised = [lr + 1 + r % 3 for r, lr in enumerate(replicas.lr_shifts)]
    replicas.lr_shifts = raised
    for m, lr in zip(alone, raised, strict=True):
        m.lr_shift = lr
    for step in range(1, 6):
        x, y = _inputs(cfgs, 1, step), _labels(cfgs, 1, step)
        replicas.train_step(x, y)
        for r, m in enumerate(alone):
            m.train_step(x[r], y[r])
        assert _differing(replicas, alone) == []


def test_predict_matches_each_model():
    cfgs = _mixed(SMALL)
    replicas, alone = _train_both(cfgs, 4, 1)
    x = _inputs(cfgs, 9, 50)
    got = replicas.predict(x)
    for r, m in enumerate(alone):
        assert torch.equal(got[r], m.predict(x[r]))


@pytest.mark.parametrize("name", list(SHARED_FIELDS))
def test_a_config_differing_in_shape_is_rejected_naming_the_field(name):
    other = {
        "layers": (8, 7, 4),
        "timesteps": 6,
        "encoder": "direct",
        "batch_size": 2,
    }[name]
    with pytest.raises(ValueError, match=rf"replica 1 has {name} = .*replicas must share {name}"):
        ReplicaModel([SMALL, SMALL.replace(**{name: other})])


def test_bad_arguments_are_rejected():
    with pytest.raises(TypeError, match="non-empty sequence"):
        check_replica_configs([])
    with pytest.raises(TypeError, match="non-empty sequence"):
        check_replica_configs(SMALL)
    with pytest.raises(TypeError, match=r"cfgs\[1\] must be an SnnConfig"):
        check_replica_configs([SMALL, {"layers": (8, 6, 4)}])
    replicas = ReplicaModel([SMALL, SMALL.replace(init_seed=5)])
    with pytest.raises(ValueError, match="input must be int64 of shape"):
        replicas.forward(torch.zeros(3, 1, 5, 8, dtype=torch.int64))
    with pytest.raises(ValueError, match="labels must be"):
        replicas.train_step(_inputs(replicas.cfgs, 1, 0), torch.tensor([[0], [4]]))
    with pytest.raises(ValueError, match=r"lr_shifts\[1\] = 2 is out of range"):
        replicas.lr_shifts = [10, 2]
    with pytest.raises(IndexError, match="replica must be an int"):
        replicas.model(2)
    wide = [w.clone() for w in replicas.weights]
    wide[0][1, 0, 0] = 1 << (SMALL.master_bits - 1)
    with pytest.raises(ValueError, match=r"weights\[0\] exceed"):
        ReplicaModel(replicas.cfgs, wide)


@pytest.fixture(scope="module")
def digits_slice():
    ds = load_dataset("digits")
    return dataclasses.replace(
        ds,
        x_train=ds.x_train[:48],
        y_train=ds.y_train[:48],
        x_test=ds.x_test[:30],
        y_test=ds.y_test[:30],
    )


def test_train_replicas_equals_train_int_per_config(digits_slice, tmp_path):
    base = SnnConfig(layers=(64, 12, 10), timesteps=4)
    cfgs = [
        base,
        base.replace(init_seed=5, encoder_seed=8, reset="zero", rounding="nearest"),
        base.replace(w_bits=6, bptt="sltt", surrogate="triangle", lfsr_seed=3, in_bits=6),
    ]
    paths = [tmp_path / f"replica{r}.pt" for r in range(len(cfgs))]
    rows = []
    run = train_replicas(cfgs, digits_slice, 3, checkpoints=paths, on_epoch=rows.append)
    assert len(rows) == 3 and all(len(row) == len(cfgs) for row in rows)
    for r, cfg in enumerate(cfgs):
        ckpt = tmp_path / f"alone{r}.pt"
        want = train_int(cfg, digits_slice, 3, checkpoint=ckpt)
        got = run.results[r]
        assert got.history == want.history
        assert (got.test_accuracy, got.train_accuracy) == (want.test_accuracy, want.train_accuracy)
        _, alone = load_checkpoint(ckpt, cfg, "int")
        _, mine = load_checkpoint(paths[r], cfg, "int")
        assert _same_state(run.model.state_dict(r), alone["state"])
        assert _same_state(mine["state"], alone["state"])
        assert mine["meta"]["history"] == alone["meta"]["history"]


def test_train_replicas_with_batches_and_a_partial_last_batch(digits_slice, tmp_path):
    base = SnnConfig(layers=(64, 10), timesteps=3, batch_size=5)  # 48 = 9 batches + 3
    cfgs = [base, base.replace(init_seed=9, rounding="nearest")]
    run = train_replicas(cfgs, digits_slice, 2, schedule="constant")
    assert run.model.pending == 3  # the last partial batch waits, as on the chip
    for r, cfg in enumerate(cfgs):
        ckpt = tmp_path / f"alone{r}.pt"
        want = train_int(cfg, digits_slice, 2, schedule="constant", checkpoint=ckpt)
        assert run.results[r].history == want.history
        assert run.results[r].train_accuracy == want.train_accuracy
        assert _same_state(run.model.state_dict(r), load_checkpoint(ckpt)[1]["state"])


def test_train_replicas_validates_its_arguments(digits_slice):
    with pytest.raises(ValueError, match="lr schedule 'cosine' is unknown"):
        train_replicas([SMALL], digits_slice, 1, schedule="cosine")
    with pytest.raises(ValueError, match="layers\\[0\\] = 8 but dataset"):
        train_replicas([SMALL], digits_slice, 1)
    cfg = SnnConfig(layers=(64, 10), timesteps=2)
    with pytest.raises(ValueError, match="one path per replica"):
        train_replicas([cfg, cfg.replace(init_seed=4)], digits_slice, 1, checkpoints=["a.pt"])
    with pytest.raises(ValueError, match="eval_chunk must be a positive int"):
        train_replicas([cfg], digits_slice, 1, eval_chunk=0)
