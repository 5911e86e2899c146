"""The training scenario every single-core testbench runs, over any transport.

:func:`train_and_check` writes the seed's initial weights, then per step: loads the input
spikes, runs FORWARD, gives the label (output layer) or the golden error (hidden layer), runs
BACKWARD, reads back every quantity the engines wrote, runs UPDATE, reads the weights and LFSR
states, and checks all of it against the golden model (:func:`~spikeforge.sim.checker.check_step`).
The cocotb testbench (``tb_core``) and the simulator benchmark run exactly this.
"""

from __future__ import annotations

from collections.abc import Callable

from spikeforge.hw.protocol import MAGIC, Quantity
from spikeforge.sim.checker import check_step
from spikeforge.sim.model import CoreModel
from spikeforge.sim.session import CoreSession
from spikeforge.sim.stimulus import samples, weights_for_seed

__all__ = ["READ_BACK", "backward", "first_step", "lr_shift_at", "train_and_check"]

READ_BACK = {
    "membranes": Quantity.MEMBRANES,
    "spikes": Quantity.SPIKES,
    "counts": Quantity.COUNTS,
    "deltas": Quantity.DELTAS,
    "eprev": Quantity.EPREV,
}
"""Quantities read after BACKWARD (``eprev`` only on cores that emit the error)."""


def lr_shift_at(params, seed: int, step: int, steps: int) -> int:
    """The learning-rate shift of step ``step`` of seed ``seed`` (of ``steps`` per seed): the
    allowed shifts in turn, continued from seed to seed (``lr_shift + (seed*steps + step) mod
    lr_range``), so the CI matrix's 3 seeds of 2 steps reach all 4 shifts of every core."""
    return params.net.lr_shift + (seed * steps + step) % params.lr_range


async def backward(session: CoreSession, ref: dict, *, update: bool = False) -> None:
    """BACKWARD of the model's step ``ref`` (:meth:`CoreModel.step`): the output layer from
    its label, a hidden layer from the golden error written to it."""
    params = session.params
    if params.layer == params.net.n_layers - 1:
        await session.set_label(ref["label"])
        await session.backward(update=update)
    else:
        await session.write(Quantity.ERRORS, ref["e"])
        await session.backward(update=update, external_error=True)


async def first_step(session: CoreSession, *, seed: int, density: float) -> dict:
    """Write seed ``seed``'s initial weights and return the model's first training step on its
    first sample (at the base learning-rate shift), before anything of it is sent."""
    params = session.params
    net = params.net
    weights = weights_for_seed(net, seed)
    j0 = params.neuron_offset
    await session.write(Quantity.WEIGHTS, weights[params.layer][j0 : j0 + params.n_out])
    xs, labels = samples(net, seed, 1, density)
    return CoreModel(params, weights).step(xs[0], int(labels[0, 0]), lr_shift=net.lr_shift)


async def train_and_check(
    session: CoreSession,
    *,
    seed: int,
    steps: int,
    density: float,
    corrupt: bool = False,
    checks: bool = True,
    on_step: Callable[[int, int], object] = lambda step, lr: None,
) -> list[dict]:
    """Train ``steps`` steps of seed ``seed`` and check every value; return the model's values
    per step (:meth:`CoreModel.step`). ``corrupt`` falsifies one golden delta of step 0 (to
    prove the checker fails); ``on_step(n, lr)`` is called after each checked step with the
    number of steps done and the learning-rate shift the step used (:func:`lr_shift_at`).
    Without ``checks`` nothing is compared: the planning pass of :mod:`~spikeforge.sim.plan`
    (the commands never depend on the answers).
    """
    params = session.params
    net = params.net
    assert (await session.info())[0] == MAGIC
    weights = weights_for_seed(net, seed)
    model = CoreModel(params, weights)
    xs, labels = samples(net, seed, steps, density)
    j0 = params.neuron_offset
    await session.write(Quantity.WEIGHTS, weights[params.layer][j0 : j0 + params.n_out])
    refs = []
    for step in range(steps):
        lr = lr_shift_at(params, seed, step, steps)
        ref = model.step(xs[step], int(labels[step, 0]), lr_shift=lr)
        await session.set_lr(lr)
        await session.load_spikes(ref["x"])
        await session.forward()
        await backward(session, ref)
        got = {n: await session.read(q) for n, q in READ_BACK.items() if n in ref["expected"]}
        if not params.fused_grads:
            got["grads"] = await session.read(Quantity.GRADS)
        await session.update()
        got["weights"] = await session.read(Quantity.WEIGHTS)
        got["lfsr"] = await session.read(Quantity.LFSR)
        if corrupt and step == 0:
            ref["expected"]["deltas"][-1, -1] += 1
        if checks:
            check_step(ref["expected"], got, step=step, seed=seed)
        refs.append(ref)
        on_step(step + 1, lr)
    return refs
