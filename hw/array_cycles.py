"""Cycle model of a :class:`~spikeforge.hw.array.CoreArray` training step (and of an inference
pass, its forward packets), links included.

Every core's engines follow their own exact formulas (:mod:`~spikeforge.hw.forward`,
:mod:`~spikeforge.hw.backward`, :mod:`~spikeforge.hw.gradient`, :mod:`~spikeforge.hw.update`);
what the array adds is *when* each timestep may start. The model replays the schedule timestep
by timestep and word by word on the links:

* **forward** -- the cores above the first layer start FORWARD in the same cycle, the first
  layer's :data:`FORWARD_LEAD` later with their LOAD_SPIKES (the forward pass streamed into the
  load: timestep ``t`` waits for its header, each token for its event, :func:`load_avail`).
  Each core's FP engine follows :func:`~spikeforge.hw.forward.forward_schedule`: timestep
  ``t``'s header is read at ``max(X_{t-1} + 1, avail_t)`` (``X_{t-1}`` the last token of
  ``t - 1``), its tokens follow ``READ_LATENCY + 1`` cycles later (on the first layer, each not
  before its event is written), and group ``g``'s integrate (cycle ``I_t[g]``, held by the
  hazard check until ``I_{t-1}[g] + FP_DEPTH``) puts its spike mask into the emitter FIFO
  ``FP_STAGES`` cycles later. The serializer sends one word per spike and a ``last`` word per
  timestep; the merge takes source 0's words of ``t``, then source 1's, ...; the receiver
  counts timestep ``t`` :data:`~spikeforge.hw.links.LANDED` ``+ 1`` cycles after the merged
  ``last`` word.
* **backward** -- every core starts BACKWARD in the same cycle (one packet,
  :data:`~spikeforge.hw.protocol.BACKWARD_ALL`). BP's delta phase of ``t`` waits for ``e[t]``;
  its error phase (``max(1, K[t])`` steps per input, ``K[t]`` the core's groups with a nonzero
  delta, :func:`~spikeforge.hw.backward.nonzero_groups`) writes ``e_prev[t][i]``
  ``BP_ERROR_STAGES`` cycles after the last step of ``i``; the reducer joins the partial sums
  of all cores of the layer and hands each value to the core that owns neuron ``i``. WG
  follows BP's delta phases as in :func:`gradient_cycles` (``a_t K[t]`` tokens); the update
  follows both. A core with fused gradients has no WG engine; its update builds the input mask
  from the layer's spikes first (:func:`~spikeforge.hw.update.update_cycles`).

Backward, a faster slice can fill its error FIFO while the reducer waits for a slower one; its
BP engine then pauses, and the model follows that exactly (each core's error phase issues only
while its FIFO level is below the threshold, with the reducer's pace and the FIFO levels solved
together). Forward, the model assumes the spike FIFOs never fill; it reports ``fifo_peak``, the
most entries one would hold, so a caller can see when that assumption fails (above
``LINK_FIFO_DEPTH`` minus the emitter's margin, 18, the FP engine would pause).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from spikeforge.hw.backward import (
    BP_DELTA_DRAIN,
    BP_PREFETCH,
    _tree_levels,
    bp_error_drain,
    nonzero_groups,
)
from spikeforge.hw.cycles import BACKWARD_HANDSHAKE, UPDATE_HANDSHAKE
from spikeforge.hw.datapath import READ_LATENCY
from spikeforge.hw.forward import forward_schedule
from spikeforge.hw.gradient import wg_schedule
from spikeforge.hw.links import LANDED, LINK_FIFO_DEPTH
from spikeforge.hw.params import CoreParams
from spikeforge.hw.update import update_cycles

__all__ = ["PHASES", "ArrayCycles", "array_step_cycles", "forward_starts", "load_avail"]

FP_STAGES = 2 * READ_LATENCY + 4
"""Cycles from an integrate token to its spike mask entering the emitter FIFO (stage F)."""
FIFO_LATENCY = 2
"""Cycles from a FIFO write to the word being readable."""
BP_ERROR_STAGES = BP_PREFETCH + READ_LATENCY + 5
"""Cycles from the last error-phase step of input ``i`` to ``e_prev[t][i]`` entering the
emitter FIFO, plus the adder tree's levels."""


ANSWER_CYCLES = 1
"""Response-merger cycles per one-word answer packet when answers wait back to back (the next
packet is locked in the cycle the last word of the one before leaves); a lone answer takes two
(lock, then the word)."""
STATUS_DELAY = 2
"""Cycles from an engine's last busy cycle to its status word reaching the response merger."""
FORWARD_LEAD = 2
"""Cycles the first layer's cores start their forward pass (LOAD_SPIKES with
:data:`~spikeforge.hw.protocol.LOAD_FORWARD`) after the cores above it start FORWARD: the
FORWARD packet's two words go first (``tests/test_array.py``, every core's counters)."""
LOAD_STEP = 1
"""Cycles a streamed load spends per timestep besides its index words (the count word, whose
cycle writes the header): for the first layer's forward pass, timestep ``t``'s header is in
place ``1 + sum_{u < t} (a_u + LOAD_STEP)`` cycles after its start and its event ``k``
``k + 1`` cycles after that (:func:`load_avail`)."""
HOST_FIXED = 15
"""Cycles of a training step that depend on nothing above: the host's two round trips (SET_LABEL,
the upper layers' FORWARD and the streamed load sent back to back; BACKWARD) through the driver,
router, cores' command decoders, response FIFOs and monitor, and the route and command words
before the forward pass starts (measured under cocotb + Verilator with no idle or backpressure;
docs/array.md)."""
LABEL_SKEW = 1
"""Cycles the cores between the first and the last layer start FORWARD before the last layer's:
the router hands each core the FORWARD packet's words as it takes them, and the last layer's
cores take them a cycle late, still answering the SET_LABEL before it."""
LABEL_LOCK = 0
"""Cycle (from the forward pass's start) the response merger may lock the first SET_LABEL
answer; the label's ``k`` answers (the last layer's cores) leave back to back from there, and a
FORWARD answer can lock only after them. Not measured: in every run the forward pass outlasts
the label's answers by far, so no FORWARD answer has waited behind one."""
HOST_FIXED_INFER = 7
"""The same for an inference pass (the forward packets only: one round trip)."""


@dataclass(frozen=True)
class ArrayCycles:
    """Per-core counters (as the COUNTERS command reports them), the phase walls (the last
    answer of the phase, from its start), the whole step as the host sees it, and an
    inference pass (LOAD_SPIKES and FORWARD only, to the last FORWARD answer) on the same
    sample and weights."""

    forward: list[int]
    backward: list[int]
    forward_wall: int
    backward_wall: int
    step: int
    fifo_peak: int
    infer: int
    phases: dict[str, int] = field(default_factory=dict)
    """The step's cycles by phase (:data:`PHASES`, in order; they add up to ``step``)."""

    def to_dict(self) -> dict:
        return {
            "forward": self.forward,
            "backward": self.backward,
            "forward_wall": self.forward_wall,
            "backward_wall": self.backward_wall,
            "step": self.step,
            "fifo_peak": self.fifo_peak,
            "infer": self.infer,
            "phases": dict(self.phases),
        }


PHASES = {
    "forward": "the forward pass, the input load streamed into it, to the slowest core's "
    "status word (its FP counter + STATUS_DELAY + its start, forward_starts)",
    "forward_answers": "FORWARD answers after the slowest core's status word",
    "backward": "BACKWARD (with update) to the slowest core's status word",
    "backward_answers": "BACKWARD answers after the slowest core's status word",
    "host_fixed": "HOST_FIXED: the host's two round trips and the words before the forward pass",
}
"""The phases of :attr:`ArrayCycles.phases` and what each counts."""


def _answers(ready: Sequence[int], free: int = 0) -> int:
    """Cycle of the last answer word when the cores' status words are ready at ``ready``; the
    merger takes one packet at a time, the earliest (lowest core on ties) first, and locks the
    next one in the cycle the word before leaves (``free``: the first cycle it may lock one)."""
    last = 0
    for r in sorted(ready):
        lock = max(r, free)
        last, free = lock + 1, lock + ANSWER_CYCLES
    return last


def _serialize(entries, merge_free, first_free):
    """Words of one source's timestep through its serializer.

    ``entries``: ``(ready, spikes, last)`` in order; ``merge_free``: first cycle the merge takes
    this source's words. Returns (the cycle of each word, the serializer's next free cycle).
    """
    free = first_free
    times = []
    for ready, spikes, last in entries:
        load = max(ready, free)
        words = spikes + (1 if last else 0)
        if words == 0:
            free = load + 2
            continue
        out = max(load + 1, merge_free)
        for _ in range(words):
            times.append(out)
            out += 1
        free = out  # the cycle after the last word
    return times, free


def load_avail(x) -> tuple[list[int], list[list[int]]]:
    """``(avail, events)`` of a forward pass streamed with its LOAD_SPIKES (input spikes ``x``
    ``[T][n_in]``), the first cycles (from the FP engine's start, which is the cycle the load
    takes its first count word) the engine may read timestep ``t``'s header, ``avail[t] = 1 +
    sum_{u < t} (a_u + LOAD_STEP)``, and its event ``k``, ``events[t][k] = avail[t] + 1 + k``:
    the loader writes the header with the count word and each event with its index word, and
    either is readable the cycle after (the arguments of
    :func:`~spikeforge.hw.forward.forward_schedule`)."""
    avail, events, cycle = [], [], 0
    for row in x:
        a = sum(row)
        avail.append(cycle + 1)
        events.append([cycle + 2 + k for k in range(a)])
        cycle += a + LOAD_STEP
    return avail, events


def _forward(
    cores: Sequence[CoreParams], layers, spikes, starts: Sequence[int]
) -> tuple[list[int], list[list[int]], int]:
    """Forward: per-core FP busy cycles (from each core's start) and per-layer avail times
    (cycles from the origin; core ``n`` starts ``starts[n]`` cycles after it). The first
    layer's forward pass is streamed with its load (:func:`load_avail`, from its start)."""
    T = cores[0].timesteps
    busy = [0] * len(cores)
    # The first layer's load, from its cores' start (they start together): per timestep and
    # per event. avail[t] of the current layer: first cycle (from the origin) avail > t.
    load, events = load_avail(spikes[0])
    avail = [a + starts[layers[0][0]] for a in load]
    fifo_peak = 0
    for layer, group in enumerate(layers):
        x = spikes[layer]  # [T][n_in] input spikes of this layer
        active = [sum(row) for row in x]
        out = spikes[layer + 1]
        last_layer = layer == len(layers) - 1
        per_source = []
        for n in group:
            p = cores[n]
            G, P = p.groups, p.lanes
            own = [a - starts[n] for a in avail]  # from the core's start
            ints, busy[n] = forward_schedule(p, active, own, events if layer == 0 else None)
            if not last_layer:
                j0 = p.neuron_offset
                entries = []
                for t in range(T):
                    row = []
                    for g in range(G):
                        pc = sum(out[t][j0 + g * P + q] for q in range(P))
                        ready = ints[t][g] + FP_STAGES + FIFO_LATENCY + starts[n]
                        row.append((ready, pc, g == G - 1))
                    entries.append(row)
                per_source.append(entries)
        if last_layer:
            break
        # Merge: per timestep source 0's words, then source 1's, ...; one last word passes.
        frees = [0] * len(per_source)
        merge_free = 0
        nxt = []
        for t in range(T):
            for s, entries in enumerate(per_source):
                times, frees[s] = _serialize(entries[t], merge_free, frees[s])
                merge_free = times[-1] + 1  # the source's last word; the merge moves on
                fifo_peak = max(fifo_peak, _peak(entries[t], times))
            nxt.append(merge_free - 1 + LANDED + 1)
        avail = nxt
    return busy, avail, fifo_peak


def forward_starts(layers: Sequence[Sequence[int]], cores: int, *, label: bool) -> list[int]:
    """The cycle each core starts its forward pass, from the start of the last layer's cores:
    the first layer's :data:`FORWARD_LEAD` later (its load follows the FORWARD packet; on a
    one-layer array it is the origin); in a training step (``label``: SET_LABEL went first)
    the layers between :data:`LABEL_SKEW` earlier (they take the FORWARD packet's words while
    the last layer's cores still answer SET_LABEL)."""
    starts = [0] * cores
    if len(layers) > 1:
        for n in layers[0]:
            starts[n] = FORWARD_LEAD
        for group in layers[1:-1] if label else ():
            for n in group:
                starts[n] = -LABEL_SKEW
    return starts


def _peak(entries, times) -> int:
    """Most entries waiting in a FIFO (rough: entries ready before the last word left)."""
    if not times:
        return 0
    end = times[-1]
    return sum(1 for ready, _, _ in entries if ready <= end)


def _bp_schedule(p: CoreParams, start: int, arrive, pops, nonzero):
    """One core's BP: ``(bp_end, visible[t], ep[t][i])`` -- the last busy cycle, when WG may
    take ``t``, and when ``e_prev[t][i]`` is readable from the emitter. ``nonzero[t]``: the
    core's ``K[t]``.

    ``arrive[t]``: first cycle the error of ``t`` is in place (None: from the label). ``pops``:
    the cycles the reducer takes this core's values, in order (None: at once); the error phase
    issues a token only while the emitter FIFO's level a cycle earlier is below its threshold.
    """
    T, G = p.timesteps, p.groups
    stages = BP_ERROR_STAGES + _tree_levels(p.lanes)  # token to the FIFO write (ep_wen)
    threshold = LINK_FIFO_DEPTH - (bp_error_drain(p.lanes) + 2)  # the emitter's margin
    written: list[int] = []
    k_pop = 0
    k_written = 0

    def room(c: int) -> bool:
        nonlocal k_pop, k_written
        if pops is None:
            return True
        while k_written < len(written) and written[k_written] < c - 1:
            k_written += 1
        while k_pop < len(pops) and pops[k_pop] < c - 1:
            k_pop += 1
        return k_written - k_pop < threshold

    cycle = start + 1  # the first DELTA cycle
    visible, ep = {}, {}
    for t in reversed(range(T)):
        if arrive is not None:
            cycle = max(cycle, arrive[t])
        cycle += G + BP_DELTA_DRAIN  # delta phase and its drain
        visible[t] = cycle  # ready has dropped to t: WG may accumulate t
        if p.emits_error:
            ep[t] = []
            for _ in range(p.n_in):
                for _ in range(max(1, nonzero[t])):
                    while not room(cycle):
                        cycle += 1
                    cycle += 1
                written.append(cycle - 1 + stages)
                ep[t].append(cycle - 1 + stages + FIFO_LATENCY)
            cycle += bp_error_drain(p.lanes)
    return cycle - 1, visible, ep


def _backward(cores: Sequence[CoreParams], layers, spikes, deltas) -> list[int]:
    """Backward with update: per-core BACKWARD counters (cycle 0: every core's start)."""
    T = cores[0].timesteps
    busy = [0] * len(cores)
    arrive = None  # arrive[n][t]: first cycle core n's err_avail counts timestep t
    for layer in reversed(range(len(layers))):
        group = layers[layer]
        active = [sum(row) for row in spikes[layer]]
        start = 0
        n_in = cores[group[0]].n_in
        pops = None
        ks = {n: nonzero_groups(cores[n], deltas[layer]) for n in group}
        while True:  # the reducer's pace and the emitters' room depend on each other
            runs = {
                n: _bp_schedule(cores[n], start, None if arrive is None else arrive[n], pops, ks[n])
                for n in group
            }
            if layer == 0:
                break
            # The reducer passes value i of t once every core has it, one value per cycle.
            passed, prev = [], -1
            for t in reversed(range(T)):
                for i in range(n_in):
                    prev = max(max(run[2][t][i] for run in runs.values()), prev + 1)
                    passed.append(prev)
            if passed == pops:
                break
            pops = passed
        for n, (bp_end, visible, _) in runs.items():
            p = cores[n]
            wg = start + 1  # a core with fused gradients has no WG engine
            if not p.fused_grads:
                order = list(reversed(range(T)))
                tokens = [active[t] * ks[n][t] for t in order]
                wg = wg_schedule(start + 1, [visible[t] for t in order], tokens)
            engines = max(bp_end, wg - 1) - start
            upd = update_cycles(p, active)  # fused: the mask build follows the spikes
            busy[n] = engines + BACKWARD_HANDSHAKE + upd + UPDATE_HANDSHAKE
        if layer == 0:
            break
        arrive = {}
        for n in layers[layer - 1]:
            last = cores[n].neuron_range[1] - 1
            arrive[n] = {t: pops[(T - 1 - t) * n_in + last] + LANDED + 1 for t in range(T)}
    return busy


def array_step_cycles(
    cores: Sequence[CoreParams],
    layers: Sequence[Sequence[int]],
    spikes: Sequence,
    deltas: Sequence,
) -> ArrayCycles:
    """Cycles of one training step (FORWARD, then BACKWARD with update) on the array, and of an
    inference pass on the same sample.

    ``step = forward wall + backward wall + HOST_FIXED`` and ``infer = forward wall +
    HOST_FIXED_INFER``. The step's SET_LABEL goes before the forward packets: the last layer's
    ``k`` label answers leave back to back (from :data:`LABEL_LOCK`) while the forward pass
    runs, and the forward wall ends with the last FORWARD answer after them. The first layer's
    forward pass is streamed with its load (LOAD_SPIKES with
    :data:`~spikeforge.hw.protocol.LOAD_FORWARD`): timestep ``t`` starts once its header is
    written, ``1 + sum_{u < t} (a_u + LOAD_STEP)`` cycles after the start, and reads each event
    once it is written (:func:`load_avail`). The forward wall runs from the start of the last
    layer's cores (the others start as :func:`forward_starts` says) to the last FORWARD (and
    streamed LOAD_SPIKES) answer; an inference pass has no SET_LABEL before it.

    Parameters
    ----------
    cores : sequence of CoreParams
        The array's cores in core order.
    layers : sequence of sequence of int
        Core indices per layer (:func:`~spikeforge.hw.array.layer_groups`).
    spikes : sequence
        ``spikes[0]``: the input spikes ``[T][n_in]``; ``spikes[l + 1]``: layer ``l``'s output
        spikes ``[T][n_l]`` (0/1), as the golden model computes them.
    deltas : sequence
        ``deltas[l]``: layer ``l``'s deltas ``[T][n_l]`` of the sample (the golden model's
        ``traces[l].delta[0]``); each core's BP and WG skip its groups whose delta is zero.
    """
    if len(deltas) != len(layers):
        raise ValueError(f"deltas must have one entry per layer ({len(layers)}), not {len(deltas)}")
    starts = forward_starts(layers, len(cores), label=True)
    fwd, _, peak = _forward(cores, layers, spikes, starts)
    bwd = _backward(cores, layers, spikes, deltas)
    ready = [c + STATUS_DELAY + starts[n] for n, c in enumerate(fwd)]
    alone = forward_starts(layers, len(cores), label=False)  # an inference pass
    infer = fwd if alone == starts else _forward(cores, layers, spikes, alone)[0]
    infer_wall = _answers([c + STATUS_DELAY + alone[n] for n, c in enumerate(infer)])
    # The last layer's SET_LABEL answers went first, back to back from LABEL_LOCK on.
    fwd_wall = _answers(ready, free=LABEL_LOCK + len(layers[-1]) * ANSWER_CYCLES)
    bwd_wall = _answers([c + STATUS_DELAY for c in bwd])
    fwd_busy, bwd_busy = max(ready), max(bwd) + STATUS_DELAY
    phases = {
        "forward": fwd_busy,
        "forward_answers": fwd_wall - fwd_busy,
        "backward": bwd_busy,
        "backward_answers": bwd_wall - bwd_busy,
        "host_fixed": HOST_FIXED,
    }
    return ArrayCycles(
        forward=fwd,
        backward=bwd,
        forward_wall=fwd_wall,
        backward_wall=bwd_wall,
        step=fwd_wall + bwd_wall + HOST_FIXED,
        fifo_peak=peak,
        infer=infer_wall + HOST_FIXED_INFER,
        phases=phases,
    )
