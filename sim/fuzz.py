"""Fuzz a core's or an array's host port while it trains, bit-exact against the golden model.

The testbench parts, as in every spikeforge testbench:

* **stimulus** -- training steps (random spikes and labels per seed) and, between and inside
  them, bad packets of every kind (:mod:`spikeforge.sim.fuzz_packets`), harmless commands
  (INFO, READ, COUNTERS, an idle ABORT) and ABORTs at random moments of FORWARD and BACKWARD;
* **driver/monitor** -- any transport: ``send(words)`` one packet, ``recv()`` one answer (with
  a deadline), ``wait(cycles)``;
* **model** -- the golden model trained on the valid steps alone; every bad packet's answer
  from :meth:`~spikeforge.hw.protocol.CoreRules.status`;
* **checker** -- every answer (its opcode, status and length), the next valid command after
  every bad packet, the weights at checkpoints and every value at the end.

An ABORT that interrupts a step is followed by the host's recovery (docs/core.md, "ABORT"):
after FORWARD, FORWARD again; after BACKWARD, the step's weights, gradients (zero) and LFSR
states written back and BACKWARD again. So nothing is lost and nothing is done twice: the final
weights must equal the golden model's, value for value.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from spikeforge.codesign.host_stream import train_step_stream
from spikeforge.codesign.mapping import map_network
from spikeforge.hw.array import layer_groups
from spikeforge.hw.array_cycles import array_step_cycles
from spikeforge.hw.cycles import step_cycles
from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import (
    ARRAY_TAG,
    MAGIC,
    ArrayRules,
    CoreRules,
    Opcode,
    Quantity,
    Status,
    command,
    opcode_name,
    parse_status,
    route,
    spike_words,
    status_core,
)
from spikeforge.hw.router import default_timeout
from spikeforge.sim.array_session import ArraySession
from spikeforge.sim.checker import Mismatch, check_step
from spikeforge.sim.fuzz_packets import BadPackets, BadRoutes
from spikeforge.sim.model import CoreModel
from spikeforge.sim.session import CoreSession
from spikeforge.sim.stimulus import weights_for_seed
from spikeforge.sw.config import ConfigError, SnnConfig
from spikeforge.sw.golden import GoldenModel

__all__ = [
    "ARRAY_NET",
    "FuzzConfig",
    "FuzzReport",
    "fuzz_array",
    "fuzz_core",
    "small_array",
    "small_core",
]

Send = Callable[[Sequence[int]], Awaitable[None]]
Recv = Callable[[], Awaitable[list[int]]]
Wait = Callable[[int], Awaitable[None]]


@dataclass(frozen=True)
class FuzzConfig:
    """How a fuzz run mixes its packets.

    Attributes
    ----------
    packets : int
        Stop after this many packets (every packet on the wire counts).
    seed : int
        Weights, samples and every random choice.
    density : float
        Input spike probability of the training samples.
    bad : float
        Chance of a bad item before each packet of a training step (and again after one).
    harmless : float
        Chance of a harmless command (INFO, READ, COUNTERS, idle ABORT) before a step packet.
    abort : float
        Chance that a FORWARD or BACKWARD is followed by an ABORT after a random delay.
    check_every : int
        Read back and compare every weight after this many steps (and at the end).
    watchdog : float
        Array only: chance of a watchdog episode between steps (a stuck core, or a phase with
        a tiny timeout).
    """

    packets: int = 1000
    seed: int = 0
    density: float = 0.4
    bad: float = 0.5
    harmless: float = 0.1
    abort: float = 0.15
    check_every: int = 10
    watchdog: float = 0.1

    def __post_init__(self) -> None:
        for name in ("bad", "harmless", "abort", "watchdog", "density"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} = {value} is out of range: allowed [0, 1]")
        if self.packets < 1 or self.check_every < 1:
            raise ConfigError("packets and check_every must be at least 1")


@dataclass
class FuzzReport:
    """What a fuzz run sent and got back."""

    packets: Counter = field(default_factory=Counter)
    """Packets sent, by class (``step``, ``harmless``, ``abort``, ``recovery``, bad kinds)."""
    answers: Counter = field(default_factory=Counter)
    """Answers received, by status."""
    aborts: Counter = field(default_factory=Counter)
    """ABORTs by outcome: ``interrupted``, ``finished`` (the command beat it), ``idle``."""
    steps: int = 0
    checkpoints: int = 0
    episodes: Counter = field(default_factory=Counter)
    mismatches: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.packets.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "packets": self.total,
            "packets_by_class": dict(sorted(self.packets.items())),
            "answers_by_status": dict(sorted(self.answers.items())),
            "aborts": dict(sorted(self.aborts.items())),
            "valid_steps": self.steps,
            "checkpoints": self.checkpoints,
            "watchdog_episodes": dict(sorted(self.episodes.items())),
            "mismatches": self.mismatches,
            "seconds": round(self.seconds, 2),
            "packets_per_second": round(self.total / self.seconds, 1) if self.seconds else 0.0,
        }


class FuzzError(AssertionError):
    """An answer that differs from what the protocol says."""


def _sample(net, gen: torch.Generator, density: float) -> tuple[torch.Tensor, int]:
    x = (torch.rand(1, net.timesteps, net.n_inputs, generator=gen) < density).long()
    return x, int(torch.randint(0, net.n_outputs, (1,), generator=gen))


# -- one core ----------------------------------------------------------------------------------


class _CoreFuzz:
    def __init__(self, params: CoreParams, send: Send, recv: Recv, wait: Wait, cfg: FuzzConfig):
        self.p, self.cfg = CoreParams.checked(params), cfg
        self.send_, self.recv_, self.wait = send, recv, wait
        self.rng = random.Random(cfg.seed)
        self.rules = CoreRules.of(params)
        self.bad = BadPackets(self.rules, self.rng)
        self.report = FuzzReport()
        net = params.net
        self.model = CoreModel(params, weights_for_seed(net, cfg.seed))
        self.rows = slice(params.neuron_offset, params.neuron_offset + params.n_out)
        self.output = params.layer == net.n_layers - 1
        self.kind = "step"  # how the session's packets are counted
        self.session = CoreSession(params, self._session_call)

    # -- the wire ------------------------------------------------------------------------------
    async def _session_call(self, op, arg, payload) -> tuple[list[int], Status]:
        """The session's transport: one packet of class ``self.kind``, its answer checked for
        the opcode (the session checks the status and the length)."""
        await self.send([command(op, arg), *payload], self.kind)
        return await self.answer(op, tuple(Status), None)

    async def send(self, words: Sequence[int], kind: str) -> None:
        await self.send_([w & 0xFFFFFFFF for w in words])
        self.report.packets[kind] += 1

    async def answer(
        self, op: int, status: Status | tuple[Status, ...], data: int | None = 0
    ) -> tuple[list[int], Status]:
        """The next answer: it must echo ``op``, carry ``status`` (or one of them) and ``data``
        data words (``None``: any number). Its data words and status."""
        words = await self.recv_()
        echo, got = parse_status(words[-1])
        self.report.answers[got.name] += 1
        wanted = status if isinstance(status, tuple) else (status,)
        if echo != op or got not in wanted or (data is not None and len(words) - 1 != data):
            raise FuzzError(
                f"expected {opcode_name(op)} answering {'/'.join(s.name for s in wanted)} with "
                f"{data} data words, got {opcode_name(echo)} {got.name} with {len(words) - 1}"
            )
        return words[:-1], got

    async def call(self, words: Sequence[int], kind: str, data: int | None = 0) -> list[int]:
        await self.send(words, kind)
        return (await self.answer(words[0] >> 24, Status.OK, data))[0]

    async def write(self, q: Quantity, values: torch.Tensor, kind: str) -> None:
        self.kind = kind
        await self.session.write(q, values)

    async def read(self, q: Quantity, kind: str) -> torch.Tensor:
        self.kind = kind
        return await self.session.read(q)

    # -- what the core must hold -----------------------------------------------------------------
    def weights(self) -> torch.Tensor:
        return self.model.model.weights[self.p.layer][self.rows]

    def lfsr(self) -> torch.Tensor:
        return self.model.model.lfsr_states[self.p.layer][self.rows]

    async def check(self, step: int) -> None:
        got = {
            "weights": await self.read(Quantity.WEIGHTS, "harmless"),
            "lfsr": await self.read(Quantity.LFSR, "harmless"),
            "grads": await self.read(Quantity.GRADS, "harmless"),
        }
        expected = {
            "weights": self.weights(),
            "lfsr": self.lfsr(),
            "grads": torch.zeros_like(got["grads"]),
        }
        try:
            check_step(expected, got, step=step, seed=self.cfg.seed)
        except Mismatch:
            self.report.mismatches += 1
            raise
        self.report.checkpoints += 1

    # -- stimulus --------------------------------------------------------------------------------
    async def maybe_bad(self, valid: list[list[int]]) -> None:
        while self.rng.random() < self.cfg.bad:
            item = self.bad.draw(valid)
            for frame, status in zip(item.frames, item.answers, strict=True):
                await self.send(frame, item.kind)
                await self.answer(frame[0] >> 24, status)

    async def maybe_harmless(self, held: dict[Quantity, torch.Tensor]) -> None:
        """Perhaps INFO, COUNTERS, an idle ABORT or a READ; a READ of a quantity in ``held``
        (what the core holds now) must return exactly that."""
        if self.rng.random() >= self.cfg.harmless:
            return
        what = self.rng.choice(["info", "counters", "read", "abort"])
        if what == "info":
            words = await self.call([command(Opcode.INFO)], "harmless", 3)
            if words[0] != MAGIC or words[1] | words[2] << 32 != int(self.p.core_hash, 16):
                raise FuzzError(f"INFO answered {words}")
        elif what == "counters":
            await self.call([command(Opcode.COUNTERS)], "harmless", 6)
        elif what == "abort":
            await self.call([command(Opcode.ABORT)], "abort")
            self.report.aborts["idle"] += 1
        else:
            q = self.rng.choice(list(self.rules.shapes))
            value = await self.read(q, "harmless")
            if q in held and not torch.equal(value, held[q]):
                self.report.mismatches += 1
                raise FuzzError(f"READ {q.name} differs from what the core must hold")

    async def command(self, words, duration: int, recover) -> None:
        """A FORWARD or BACKWARD, perhaps ABORTed after a random part of its ``duration``."""
        if self.rng.random() >= self.cfg.abort:
            await self.call(words, "step")
            return
        await self.send(words, "step")
        await self.wait(self.rng.randrange(max(1, duration * 5 // 4)))
        await self.send([command(Opcode.ABORT)], "abort")
        _, status = await self.answer(words[0] >> 24, (Status.OK, Status.ABORTED))
        await self.answer(Opcode.ABORT, Status.OK)
        self.report.aborts["interrupted" if status == Status.ABORTED else "finished"] += 1
        if status == Status.ABORTED:
            await recover()

    async def step(self, number: int, gen: torch.Generator) -> None:
        p, net = self.p, self.p.net
        x, label = _sample(net, gen, self.cfg.density)
        lr = net.lr_shift + self.rng.randrange(p.lr_range)
        w_before, lfsr_before = self.weights().clone(), self.lfsr().clone()
        ref = self.model.step(x, label, lr_shift=lr)
        active = [int(v) for v in ref["x"].sum(1)]
        cycles = step_cycles(p, active, ref["nonzero"])
        ext = 0 if self.output else 2
        packets: list[tuple[str, list[list[int]]]] = [
            ("lr", [[command(Opcode.SET_LR, lr)]]),
            ("load", [[command(Opcode.LOAD_SPIKES), *spike_words(ref["x"].tolist())]]),
            ("forward", [[command(Opcode.FORWARD)]]),
        ]
        if self.output:
            packets.append(("label", [[command(Opcode.SET_LABEL, ref["label"])]]))
        else:
            flat = [int(v) for v in ref["e"].reshape(-1).tolist()]
            chunks = self.rules.write_chunks(Quantity.ERRORS, flat)
            packets.append(("errors", [[command(Opcode.WRITE, a), *c] for a, c in chunks]))
        packets.append(("backward", [[command(Opcode.BACKWARD, 1 | ext)]]))
        valid = [w for _, ws in packets for w in ws]

        async def redo_forward():
            await self.call([command(Opcode.FORWARD)], "recovery")

        async def redo_backward():
            await self.write(Quantity.WEIGHTS, w_before, "recovery")
            await self.write(Quantity.GRADS, torch.zeros_like(w_before), "recovery")
            await self.write(Quantity.LFSR, lfsr_before, "recovery")
            await self.call([command(Opcode.BACKWARD, 1 | ext)], "recovery")

        held = {  # until BACKWARD: the step's weights and LFSR states, no gradient
            Quantity.WEIGHTS: w_before,
            Quantity.LFSR: lfsr_before,
            Quantity.GRADS: torch.zeros_like(w_before),
        }
        for name, frames in packets:
            await self.maybe_bad(valid)
            await self.maybe_harmless(held)
            for words in frames:
                if name == "forward":
                    await self.command(words, cycles["forward"], redo_forward)
                elif name == "backward":
                    await self.command(words, cycles["backward"], redo_backward)
                else:
                    await self.call(words, "step")
        self.report.steps += 1
        if (number + 1) % self.cfg.check_every == 0:
            await self.check(number)

    async def run(self) -> FuzzReport:
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(1000 + self.cfg.seed)
        await self.write(Quantity.WEIGHTS, self.weights(), "step")
        number = 0
        while self.report.total < self.cfg.packets:
            await self.step(number, gen)
            number += 1
        await self.maybe_bad([[command(Opcode.FORWARD)]])
        await self.check(number - 1)
        self.report.seconds = time.perf_counter() - t0
        return self.report


async def fuzz_core(
    params: CoreParams, send: Send, recv: Recv, wait: Wait, cfg: FuzzConfig
) -> FuzzReport:
    """Fuzz one core's host port while it trains (see the module docstring); raises on the
    first wrong answer or value, returns the report otherwise."""
    return await _CoreFuzz(params, send, recv, wait, cfg).run()


# -- an array ----------------------------------------------------------------------------------


class _ArrayFuzz:
    def __init__(self, cores: Sequence[CoreParams], send: Send, recv: Recv, wait, cfg):
        self.cores = [CoreParams.checked(p) for p in cores]
        self.layers = layer_groups(self.cores, linked=True)
        self.net = self.cores[0].net
        self.cfg, self.send_, self.recv_, self.wait = cfg, send, recv, wait
        self.rng = random.Random(cfg.seed)
        self.rules = [CoreRules.of(p) for p in self.cores]
        self.bad = BadRoutes(ArrayRules(len(self.cores)), self.rules, self.rng)
        self.report = FuzzReport()
        self.golden = GoldenModel(self.net, weights_for_seed(self.net, cfg.seed))
        self.host = ArraySession(self.cores, self._send, self._recv)
        self.everyone = list(range(len(self.cores)))
        self.timeout = default_timeout(self.cores)

    async def _send(self, words):
        await self.send_(words)
        self.report.packets[self._kind] += 1

    async def _recv(self):
        words = await self.recv_()
        self.report.answers[parse_status(words[-1])[1].name] += 1
        return words

    _kind = "step"

    def kind(self, name: str) -> _ArrayFuzz:
        self._kind = name
        return self

    async def answers(self, expect: dict[int, Status | tuple[Status, ...]], op: int | None):
        """One answer from every key of ``expect`` (a core, or ARRAY_TAG), any order."""
        seen: dict[int, Status] = {}
        while len(seen) < len(expect):
            words = await self._recv()
            core = status_core(words[-1])
            echo, status = parse_status(words[-1])
            wanted = expect.get(core)
            wanted = wanted if isinstance(wanted, tuple) else (wanted,)
            if core in seen or wanted == (None,) or status not in wanted:
                raise FuzzError(f"unexpected answer {status.name} from {core:#x}: {expect}")
            if core != ARRAY_TAG and op is not None and echo != op:
                raise FuzzError(
                    f"core {core} answered {opcode_name(echo)}, expected {opcode_name(op)}"
                )
            seen[core] = status
        return seen

    async def maybe_bad(self, valid) -> None:
        while self.rng.random() < self.cfg.bad:
            item = self.bad.draw(valid)
            for frame, expect in zip(item.frames, item.answers, strict=True):
                self.kind(item.kind)
                await self._send(list(frame))
                op = None if ARRAY_TAG in expect else frame[1] >> 24
                await self.answers(expect, op)

    def snapshot(self) -> dict:
        return self.golden.state_dict()

    async def restore(self, state: dict) -> None:
        """Every core back to ``state`` (weights, zero gradients, LFSR states)."""
        self.kind("recovery")
        for layer, group in enumerate(self.layers):
            for n in group:
                p = self.cores[n]
                rows = slice(p.neuron_offset, p.neuron_offset + p.n_out)
                s = self.host.core(n)
                await s.write(Quantity.WEIGHTS, state["weights"][layer][rows])
                await s.write(Quantity.GRADS, torch.zeros_like(state["weights"][layer][rows]))
                await s.write(Quantity.LFSR, state["lfsr_states"][layer][rows])

    async def check(self, step: int) -> None:
        self.kind("harmless")
        got = await self.host.read_weights()
        for layer, (exp, val) in enumerate(zip(self.golden.weights, got, strict=True)):
            try:
                check_step(
                    {"weights": exp},
                    {"weights": val},
                    step=step,
                    seed=self.cfg.seed,
                    where=f", layer {layer}",
                )
            except Mismatch:
                self.report.mismatches += 1
                raise
        self.report.checkpoints += 1

    async def aborted(self, packets, duration: int, redo) -> None:
        """After the step's ``packets`` were posted: wait a random part of their ``duration``
        (cycles), ABORT every core, recover."""
        await self.wait(self.rng.randrange(max(1, duration * 5 // 4)))
        self.kind("abort")
        statuses = await self.host.abort()
        expected = {n for p in packets for n in p.answers}
        if set(statuses) != expected:
            raise FuzzError(f"ABORT: answers from cores {sorted(statuses)}, not {sorted(expected)}")
        hit = any(s == Status.ABORTED for s in statuses.values())
        bad = [s for s in statuses.values() if s not in (Status.OK, Status.ABORTED)]
        if bad:
            raise FuzzError(f"the aborted commands answered {bad}")
        self.report.aborts["interrupted" if hit else "finished"] += 1
        if hit:
            await redo()

    async def step(self, number: int, gen: torch.Generator) -> None:
        x, label = _sample(self.net, gen, self.cfg.density)
        lr = self.net.lr_shift + self.rng.randrange(min(p.lr_range for p in self.cores))
        before = self.snapshot()
        self.golden.lr_shift = lr
        result = self.golden.train_step(x, labels=torch.tensor([label]))
        spikes = [result.traces[0].x[0].tolist()] + [tr.s[0].tolist() for tr in result.traces]
        deltas = [tr.delta[0].tolist() for tr in result.traces]
        walls = array_step_cycles(self.cores, self.layers, spikes, deltas)
        stream = train_step_stream(self.layers, x[0].tolist(), label)
        valid = [list(p.words) for p in stream]
        self.kind("step")
        await self.maybe_bad(valid)
        await self.host.call(self.everyone, Opcode.SET_LR, lr)
        # SET_LABEL, the forward packets (the upper layers' FORWARD, the load with FORWARD
        # streamed into it), BACKWARD; each phase's answers collected before the next here
        label_packet, forward, backward = stream[:1], stream[1:-1], stream[-1:]

        async def post(packets):
            for packet in packets:
                self.kind("step")
                await self._send(list(packet.words))

        async def collect(packets):
            await self.host.collect({n: op for p in packets for n, op in p.answers.items()})

        async def redo_forward():
            self.kind("recovery")
            await self.host.call(self.everyone, Opcode.FORWARD)

        async def redo_backward():
            await self.restore(before)
            self.kind("recovery")
            await post(backward)
            await collect(backward)

        await post(label_packet)
        await collect(label_packet)
        await self.maybe_bad(valid)
        await post(forward)
        if self.rng.random() < self.cfg.abort:
            # ABORT follows the load's last word: the load is done (and the banks flipped)
            # before it stops the forward pass, so FORWARD alone runs it again.
            await self.aborted(forward, walls.forward_wall, redo_forward)
        else:
            await collect(forward)
        await self.maybe_bad(valid)
        await post(backward)
        if self.rng.random() < self.cfg.abort:
            await self.aborted(backward, walls.backward_wall, redo_backward)
        else:
            await collect(backward)
        self.report.steps += 1
        if (number + 1) % self.cfg.check_every == 0:
            await self.check(number)

    async def stuck_core(self) -> None:
        """A FORWARD to the last layer's cores alone waits forever for spikes: the watchdog
        answers TIMEOUT for them, ABORT brings them back."""
        last = self.layers[-1]
        self.kind("watchdog")
        await self.host.set_timeout(self.rng.randint(50, 500))
        await self._send([route(last[0], len(last)), command(Opcode.FORWARD)])
        await self.answers(dict.fromkeys(last, Status.TIMEOUT), Opcode.FORWARD)
        self.kind("abort")
        statuses = await self.host.abort(last)
        if statuses:  # their late FORWARD answers are dropped by the array
            raise FuzzError(f"ABORT after a TIMEOUT: the array passed late answers {statuses}")
        self.kind("watchdog")
        await self.host.set_timeout(self.timeout)
        self.report.episodes["stuck core"] += 1

    async def tiny_timeout(self) -> None:
        """Packets that change nothing, under a watchdog of a few cycles: every addressed core
        answers each packet once, OK or TIMEOUT, and the array is in step again afterwards."""
        self.kind("watchdog")
        await self.host.set_timeout(self.rng.randint(1, 40))
        p0 = self.cores[0]
        weights = self.golden.weights[0][p0.neuron_offset : p0.neuron_offset + p0.n_out]
        x = torch.zeros(self.net.timesteps, p0.n_in, dtype=torch.int64)
        x[:, :: max(1, p0.n_in // 3)] = 1
        for _ in range(self.rng.randint(2, 8)):
            n = self.rng.randrange(len(self.cores))
            choice = self.rng.choice(["info", "read", "load", "write"])
            if choice == "info":
                first = self.rng.randrange(len(self.cores))
                cores = list(range(first, self.rng.randint(first + 1, len(self.cores))))
                words, op = [command(Opcode.INFO)], Opcode.INFO
            elif choice == "read":
                cores, op = [n], Opcode.READ
                words = [command(Opcode.READ, int(Quantity.WEIGHTS))]
            elif choice == "load":
                cores, op = list(self.layers[0]), Opcode.LOAD_SPIKES
                words = [command(op), *spike_words(x.tolist())]
            else:  # the weights core 0 holds already
                cores, op = [0], Opcode.WRITE
                arg, chunk = self.rules[0].write_chunks(
                    Quantity.WEIGHTS, weights.reshape(-1).tolist()
                )[0]
                words = [command(op, arg), *chunk]
            await self._send([route(cores[0], len(cores)), *words])
            await self.answers(dict.fromkeys(cores, (Status.OK, Status.TIMEOUT)), op)
        await self.host.set_timeout(self.timeout)
        self.kind("watchdog")
        await self.host.call(self.everyone, Opcode.INFO)  # every core in step again
        self.report.episodes["tiny timeout"] += 1

    async def run(self) -> FuzzReport:
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(1000 + self.cfg.seed)
        self.kind("step")
        await self.host.write_weights(self.golden.weights)
        number = 0
        while self.report.total < self.cfg.packets:
            if self.rng.random() < self.cfg.watchdog:
                await self.rng.choice([self.stuck_core, self.tiny_timeout])()
            await self.step(number, gen)
            number += 1
        await self.check(number - 1)
        self.report.seconds = time.perf_counter() - t0
        return self.report


async def fuzz_array(
    cores: Sequence[CoreParams], send: Send, recv: Recv, wait: Wait, cfg: FuzzConfig
) -> FuzzReport:
    """Fuzz an array's host port while it trains: bad route words and packets, bad inner
    packets to ranges of cores, ABORTs of every core mid-step, stuck cores and tiny
    watchdog timeouts; raises on the first wrong answer or value."""
    return await _ArrayFuzz(cores, send, recv, wait, cfg).run()


# -- presets -----------------------------------------------------------------------------------

ARRAY_NET = SnnConfig(layers=(32, 48, 10), timesteps=8)
"""The network ``spikeforge fuzz --cores C`` maps on ``C`` cores."""


def small_core() -> CoreParams:
    """The CI fuzz core: a hidden layer (12 -> 8, T = 3, 4 lanes, ``e_prev``) whose WRITEs need
    several packets (a 16-value staging buffer)."""
    net = SnnConfig(layers=(12, 8, 4), timesteps=3, surrogate="triangle")
    return CoreParams(net=net, layer=0, lanes=4, emit_error=True, write_buffer=16)


def small_array() -> list[CoreParams]:
    """The CI fuzz array: (8, 12, 4), T = 3 on three cores (layer 0 split in two)."""
    return map_network(SnnConfig(layers=(8, 12, 4), timesteps=3), 3, lanes=4).core_params()
