"""The vectorized golden model against the naive scalar model, value for value."""

from __future__ import annotations

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from naive_model import NaiveNet, rate_encode

from spikeforge.sw.config import SnnConfig
from spikeforge.sw.encoders import encode
from spikeforge.sw.golden import GoldenModel, init_weights, output_error, predict


@st.composite
def small_configs(draw):
    w_bits = draw(st.integers(2, 16))
    v_bits = draw(st.integers(w_bits + 1, min(32, w_bits + 10)))
    theta = draw(st.integers(1, (1 << (v_bits - 1)) - 1))
    g_bits = draw(st.integers(2, 12))
    encoder = draw(st.sampled_from(["rate", "direct"]))
    in_bits = draw(st.integers(1, 8))
    frac_bits = draw(st.integers(0, 4))
    lr_shift = draw(st.integers(frac_bits, frac_bits + 8))
    direct = in_bits if encoder == "direct" else 0
    t = draw(st.integers(1, 4))
    return SnnConfig(
        layers=tuple(draw(st.lists(st.integers(1, 5), min_size=2, max_size=4))),
        timesteps=t,
        w_bits=w_bits,
        frac_bits=frac_bits,
        v_bits=v_bits,
        g_bits=g_bits,
        # small accumulators saturate: exercise the per-add order
        acc_bits=draw(st.integers(g_bits + direct, g_bits + direct + 4)),
        leak_shift=draw(st.integers(1, 6)),
        theta=theta,
        reset=draw(st.sampled_from(["subtract", "zero"])),
        surrogate=draw(st.sampled_from(["boxcar", "triangle"])),
        surrogate_shift=draw(st.integers(0, v_bits - 2)),
        bptt=draw(st.sampled_from(["bptt", "sltt"])),
        rounding=draw(st.sampled_from(["nearest", "stochastic"])),
        lr_shift=lr_shift,
        bp_shift=draw(st.integers(0, 8)),
        err_shift=draw(st.integers(0, 6)),
        target_hi=t,
        target_lo=0,
        encoder=encoder,
        in_bits=in_bits,
        lfsr_seed=draw(st.integers(0, 2**32 - 1)),
        encoder_seed=draw(st.integers(0, 2**32 - 1)),
    )


def _weights(draw, cfg: SnnConfig) -> list[torch.Tensor]:
    lo, hi = -(1 << (cfg.master_bits - 1)), (1 << (cfg.master_bits - 1)) - 1
    # extremes included: full-scale weights drive membranes and sums into saturation
    value = st.one_of(st.integers(lo, hi), st.sampled_from([lo, hi, 0, -1]))
    return [
        torch.tensor(
            draw(st.lists(st.lists(value, min_size=i, max_size=i), min_size=o, max_size=o))
        )
        for o, i in cfg.weight_shapes()
    ]


def _as_lists(t: torch.Tensor):
    return t.tolist()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_training_steps_match_naive_model(data):
    cfg = data.draw(small_configs())
    weights = _weights(data.draw, cfg)
    golden = GoldenModel(cfg, weights)
    naive = NaiveNet(cfg, [w.tolist() for w in weights])
    for step in range(2):
        q = torch.tensor(
            data.draw(
                st.lists(
                    st.integers(0, (1 << cfg.in_bits) - 1),
                    min_size=cfg.n_inputs,
                    max_size=cfg.n_inputs,
                )
            )
        ).reshape(1, -1)
        label = data.draw(st.integers(0, cfg.n_outputs - 1))
        key = data.draw(st.integers(0, 2**32 - 1))
        x = encode(q, torch.tensor([key]), cfg)
        if cfg.encoder == "rate":
            assert x[0].tolist() == rate_encode(cfg, q[0].tolist(), key)
        res = golden.train_step(x, torch.tensor([label]))
        fwd = naive.forward(x[0].tolist())
        for layer, (tr, (_, u, s)) in enumerate(zip(res.traces, fwd, strict=True)):
            assert tr.u[0].tolist() == u, f"u of layer {layer}, step {step}"
            assert tr.s[0].tolist() == s, f"s of layer {layer}, step {step}"
        e = naive.output_error(fwd[-1][2], label)
        assert res.e_out[0].tolist() == e
        bwd = naive.backward(fwd, e)
        for layer, (tr, (delta, e_prev, acc)) in enumerate(zip(res.traces, bwd, strict=True)):
            assert tr.delta[0].tolist() == delta, f"delta of layer {layer}, step {step}"
            assert tr.e_prev[0].tolist() == e_prev, f"e_prev of layer {layer}, step {step}"
            assert tr.grad[0].tolist() == acc, f"grad of layer {layer}, step {step}"
        naive.update()
        assert [w.tolist() for w in res.weights] == naive.wm, f"weights after step {step}"


def test_batch_accumulates_then_updates_once():
    cfg = SnnConfig(
        layers=(6, 5, 3), timesteps=3, batch_size=3, frac_bits=0, lr_shift=2, acc_bits=9
    )
    weights = init_weights(cfg)
    golden = GoldenModel(cfg, weights)
    naive = NaiveNet(cfg, [w.tolist() for w in weights])
    q = torch.randint(0, 256, (3, 6), generator=torch.Generator().manual_seed(5))
    labels = torch.tensor([0, 2, 1])
    x = encode(q, torch.arange(3), cfg)
    res = golden.train_step(x, labels)
    assert res.updated
    for b in range(3):
        fwd = naive.forward(x[b].tolist())
        bwd = naive.backward(fwd, naive.output_error(fwd[-1][2], int(labels[b])))
        for tr, (_, _, acc) in zip(res.traces, bwd, strict=True):
            assert tr.grad[b].tolist() == acc
    naive.update()
    assert [w.tolist() for w in res.weights] == naive.wm


def test_partial_batch_does_not_update():
    cfg = SnnConfig(layers=(4, 3), timesteps=2, batch_size=2)
    golden = GoldenModel(cfg)
    before = [w.clone() for w in golden.weights]
    x = encode(torch.full((1, 4), 200), torch.tensor([1]), cfg)
    res = golden.train_step(x, torch.tensor([1]))
    assert not res.updated
    assert all(torch.equal(a, b) for a, b in zip(before, res.weights, strict=True))
    assert golden.train_step(x, torch.tensor([1])).updated


def test_integer_path_has_no_float():
    cfg = SnnConfig(layers=(8, 6, 4), timesteps=4)
    golden = GoldenModel(cfg)
    x = encode(torch.randint(0, 256, (2, 8)), torch.arange(2), cfg)
    res = golden.train_step(x[:1], torch.tensor([3]))
    for tr in res.traces:
        for name in ("x", "current", "u", "s", "e", "delta", "e_prev", "grad"):
            assert getattr(tr, name).dtype == torch.int64, name
    assert all(w.dtype == torch.int64 for w in res.weights)


def test_membrane_saturates_instead_of_wrapping():
    cfg = SnnConfig(
        layers=(16, 1), timesteps=3, w_bits=8, frac_bits=0, v_bits=9, theta=255, leak_shift=16
    )
    w = torch.full((1, 16), 127, dtype=torch.int64)
    golden = GoldenModel(cfg, [w])
    x = torch.ones(1, 3, 16, dtype=torch.int64)
    tr = golden.forward(x)[0]
    assert tr.current[0, 0, 0] == 16 * 127  # the exact sum is far outside 9 bits
    assert tr.u[0, :, 0].tolist() == [255, 255, 255]  # saturated, never wrapped to negative


def test_output_error_and_prediction():
    cfg = SnnConfig(layers=(2, 3), timesteps=4, err_shift=3, g_bits=6, target_hi=4)
    s = torch.tensor([[[1, 0, 1], [1, 0, 1], [1, 0, 0], [1, 0, 0]]])
    e = output_error(cfg, s, torch.tensor([1]))
    # counts 4, 0, 2 against targets 0, 4, 0 -> (4, -4, 2) << 3 = 32, -32, 16 -> sat6 = 31, -32, 16
    assert e[0, 0].tolist() == [31, -32, 16]
    assert (e == e[:, :1]).all()
    u = torch.zeros(1, 4, 3, dtype=torch.int64)
    u[0, -1] = torch.tensor([5, 9, 100])
    assert predict(cfg, s, u).tolist() == [0]
    tie = torch.tensor([[[1, 1, 0]] * 4])
    assert predict(cfg, tie, u).tolist() == [1]  # equal counts: larger last membrane wins


def test_external_output_error():
    cfg = SnnConfig(layers=(4, 3), timesteps=2)
    golden = GoldenModel(cfg)
    x = encode(torch.full((1, 4), 255), torch.tensor([0]), cfg)
    e = torch.full((1, 2, 3), 5, dtype=torch.int64)
    res = golden.train_step(x, e_out=e)
    assert torch.equal(res.traces[-1].e, e)


def _one_neuron(weight: int = 12, **kw) -> GoldenModel:
    base = {"layers": (1, 1), "w_bits": 8, "frac_bits": 0, "theta": 10, "surrogate_shift": 12}
    cfg = SnnConfig(**{**base, **kw})
    return GoldenModel(cfg, [torch.tensor([[weight]])])


def test_gradient_accumulates_backward_in_time_saturating_each_add():
    # g_bits = acc_bits = 4 (range -8..7); deltas 7, 7, -8 for t = 0, 1, 2 (SLTT, gate open).
    # t = 2, 1, 0 order: -8, -1, 6.  (t = 0, 1, 2 order would give 7, 7, -1.)
    model = _one_neuron(timesteps=3, g_bits=4, acc_bits=4, bptt="sltt")
    traces = model.forward(torch.ones(1, 3, 1, dtype=torch.int64))
    model.backward(traces, torch.tensor([[[7], [7], [-8]]]))
    assert traces[0].delta[0, :, 0].tolist() == [7, 7, -8]
    assert traces[0].grad[0].tolist() == [[6]]


def test_zero_reset_gates_the_temporal_term_by_the_spike_at_t():
    # weight 12 >= theta 10: spikes at t = 0 and, after the zero reset, again at every step.
    model = _one_neuron(timesteps=3, reset="zero", leak_shift=1, weight=12, g_bits=12)
    x = torch.tensor([[[1], [0], [1]]])
    traces = model.forward(x)
    # u = 12 (spike), 0 (reset: no leak carried, no input), 12 (spike)
    assert traces[0].u[0, :, 0].tolist() == [12, 0, 12]
    assert traces[0].s[0, :, 0].tolist() == [1, 0, 1]
    model.backward(traces, torch.tensor([[[64], [64], [64]]]))
    # delta[2] = 64; delta[1] = 64 + leak(64) (s[1] = 0) = 96; delta[0] = 64 + 0 (s[0] = 1)
    assert traces[0].delta[0, :, 0].tolist() == [64, 96, 64]
