"""The validated parameters of one spiking training core, derived from an :class:`SnnConfig`.

A core computes one weight layer (``n_in`` inputs, ``n_out`` neurons) of a network with ``P``
lanes. Everything the RTL generator, the cycle model, the manifest and the testbenches need is a
read-only property here, computed from the one network config; nothing in this module imports
torch or amaranth.

Invalid combinations fail before elaboration with :class:`~spikeforge.sw.config.ConfigError`
messages that name the parameter, the value and the allowed range.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

from spikeforge.hw.devices import DEFAULT_DEVICE, ECP5_DEVICES, ecp5_device
from spikeforge.sw.config import ConfigError, SnnConfig, check_int, clog2

__all__ = ["BUS_BITS", "CORE_KEYS", "DEFAULT_CORE_NET", "CoreParams", "MemorySpec", "core_table"]

BUS_BITS = 32
"""Width of the host port's command and response words."""
WRITE_BUFFER = 512
"""Default WRITE staging buffer, in values (one ECP5 block RAM of 512 x 36)."""
MAX_WRITE_BUFFER = 1 << 16
RMW_SPACING = 6
"""A :attr:`CoreParams.dense_weights` core's WRITE commits one weight per cycle when a word
comes back at most every this many values (``n_in >= RMW_SPACING``), else one per this many
cycles: its read-merge-write must be done before the word is read again."""
MAX_FUSED_TIMESTEPS = 64
"""Most timesteps of a :attr:`CoreParams.fused_grads` core (one adder per timestep per lane)."""
DISTRIBUTED_DEPTH = 256
"""Deepest nonzero-group list kept in distributed RAM (16 ``TRELLIS_DPR16X4`` per 4 bits and
read port); a deeper one takes block RAM."""


@dataclass(frozen=True)
class MemorySpec:
    """One on-core memory: ``depth`` words of ``lanes`` fields of ``width`` bits."""

    name: str
    depth: int
    width: int
    lanes: int
    purpose: str
    read_ports: int = 1
    owner: str = "core"
    """``"core"``: built by the core and shared by its engines; ``"host"``: private to the host
    controller (the WRITE staging buffer)."""
    distributed: bool = False
    """Asked of Yosys as distributed RAM (``ram_style``), not block RAM: a small memory that a
    block would waste."""
    packed: bool = False
    """Written in whole words only (no write enable per lane), so Yosys packs the lanes densely
    instead of giving each one whole 9-bit bytes."""

    @property
    def word_bits(self) -> int:
        return self.width * self.lanes

    @property
    def addr_bits(self) -> int:
        """Address width (at least 1)."""
        return max(1, (self.depth - 1).bit_length())

    @property
    def bits(self) -> int:
        return self.depth * self.word_bits

    @property
    def bram_estimate(self) -> int:
        """ECP5 block RAMs as Yosys maps this memory.

        Up to 16 words, and a memory marked :attr:`distributed`, go to distributed RAM
        (``TRELLIS_DPR16X4``). A one-field memory takes the
        cheapest of the ``DP16KD`` shapes (16384 x 1 ... 1024 x 18, and 512 x 36 as
        ``PDPW16KD``). Multi-lane memories use 512 x 36 blocks whose write enables cover 9-bit
        bytes, so a lane written on its own occupies whole bytes: ``36 // (9 * ceil(width /
        9))`` lanes per block; a :attr:`packed` one is one field of ``lanes * width`` bits, in
        the cheapest shape. Each extra read port duplicates the blocks. (The default core: 19
        estimated, 19 ``DP16KD`` in Yosys before the staging buffer and the event banks.)
        """
        if self.depth <= 16 or self.distributed:
            return 0
        if self.lanes == 1 or self.packed:
            blocks = min(
                math.ceil(self.word_bits / width) * math.ceil(self.depth / depth)
                for depth, width in BRAM_SHAPES
            )
        else:
            slot = 9 * math.ceil(self.width / 9)
            cols = (
                math.ceil(self.lanes / (36 // slot))
                if slot <= 36
                else self.lanes * (math.ceil(slot / 36))
            )
            blocks = cols * math.ceil(self.depth / 512)
        return blocks * self.read_ports


BRAM_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
"""``(depth, width)`` shapes of one ECP5 18 kbit block RAM."""


@dataclass(frozen=True, kw_only=True)
class CoreParams:
    """One core: layer ``layer`` of ``net`` computed by ``lanes`` parallel neuron lanes.

    Parameters
    ----------
    net : SnnConfig
        The network; the core takes its widths, rules and seeds from it.
    layer : int
        Which weight layer this core computes (``0 .. net.n_layers - 1``); it selects the sizes
        and the LFSR seeds ``seed_state(lfsr_seed, layer, j)``.
    lanes : int
        ``P``, neurons updated per cycle; must divide the layer's neuron count.
    lr_range : int
        The runtime learning-rate shift ``L`` may be set to ``net.lr_shift .. net.lr_shift +
        lr_range - 1`` (the step schedule needs 3 values).
    emit_error : bool or None
        Compute ``e_prev = W^T . delta`` for a previous layer. Default: ``layer > 0``.
    neurons : (start, stop) or None
        The slice of the layer's neurons this core computes when the layer is split across
        cores by output neurons (default: all of them). A split core emits the exact partial
        sum ``sum_{j in slice} W[j][i] delta[t][j]`` (:attr:`partial_bits` wide); whoever
        reduces the partial sums of all slices rounds and saturates once (docs/arithmetic.md).
    linked : bool
        The core sits in a :class:`~spikeforge.hw.array.CoreArray`: it sends its spikes to the
        next layer's cores and takes its input spikes (layer > 0) from the previous layer's
        cores over stream links, and sends ``e_prev`` backward / takes its error from the next
        layer over links, each timestep as soon as it is ready (docs/array.md).
    device : str
        ECP5 device whose block RAM budget the memories must fit.
    write_buffer : int or None
        Values the host controller stages before it commits a WRITE: one WRITE packet carries
        at most this many (whole rows), and nothing is written unless the whole packet is right.
        Default: :data:`WRITE_BUFFER` (one 512 x 36 block RAM), at most the largest writable
        quantity, at least its longest row.
    rate_encoder : bool
        The core takes input intensities (LOAD_INPUTS) and draws the rate-coded spikes itself
        with the contract's LFSRs, bit-exact with :func:`spikeforge.sw.encoders.rate_encode`:
        one byte per input per sample on the link instead of events per timestep. Needs a core
        that loads its spikes from the host and ``encoder = 'rate'``; costs a memory of
        ``n_in`` x (32 + ``in_bits``) bits and two 32-bit constant multipliers.
    dense_weights : bool
        The weight memory is written in whole words only, so its lanes pack densely into the
        block RAMs (a 12-bit master weight takes 12 bits, not two 9-bit bytes); a host WRITE of
        WEIGHTS then reads, merges and writes each word inside the core (slower on a core with
        fewer than :data:`RMW_SPACING` inputs, see :mod:`~spikeforge.hw.host.writer`).
    fused_grads : bool
        No gradient memory and no WG engine: the update engine forms every accumulator ``G[j][i]``
        when it applies it, from the delta history and a mask of the input spikes ``x[t][i]``
        (memory ``mask``, ``n_in`` words of ``T`` bits, which the update builds from the event
        memory), in the golden order ``t = T-1 .. 0`` saturating at every add. Exact for the
        hardware's batch of 1: the update must follow every BACKWARD (a second BACKWARD before
        it replaces the gradient instead of adding to it), and GRADS cannot be read or written.
    """

    net: SnnConfig
    layer: int = 0
    lanes: int = 8
    lr_range: int = 4
    emit_error: bool | None = None
    neurons: tuple[int, int] | None = None
    linked: bool = False
    device: str = DEFAULT_DEVICE
    write_buffer: int | None = None
    rate_encoder: bool = False
    fused_grads: bool = False
    dense_weights: bool = False
    _resolved_emit: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.net, SnnConfig):
            raise TypeError(f"net must be an SnnConfig, not {self.net!r}")
        net = self.net
        check_int("layer", self.layer, 0, net.n_layers - 1)
        if net.encoder == "direct" and self.layer == 0:
            raise ConfigError(
                "encoder = 'direct' is not supported by the core: its first layer needs "
                "multiplying inputs; allowed: 'rate'"
            )
        if not isinstance(self.rate_encoder, bool):
            raise ConfigError(f"rate_encoder must be true or false, not {self.rate_encoder!r}")
        if self.rate_encoder and (self.spikes_in or net.encoder != "rate"):
            raise ConfigError(
                "rate_encoder needs a core that loads its input spikes from the host (the first "
                "layer) and encoder = 'rate'"
            )
        if not isinstance(self.fused_grads, bool):
            raise ConfigError(f"fused_grads must be true or false, not {self.fused_grads!r}")
        if not isinstance(self.dense_weights, bool):
            raise ConfigError(f"dense_weights must be true or false, not {self.dense_weights!r}")
        if self.fused_grads and net.batch_size != 1:
            raise ConfigError(
                f"fused_grads with batch_size = {net.batch_size}: a fused core forms the gradient "
                "of one sample at its update (no accumulator memory); allowed: batch_size = 1"
            )
        if self.fused_grads and net.timesteps > MAX_FUSED_TIMESTEPS:
            raise ConfigError(
                f"fused_grads with timesteps = {net.timesteps}: the update's adder chain and its "
                f"input mask hold at most {MAX_FUSED_TIMESTEPS} timesteps; allowed: "
                f"[1, {MAX_FUSED_TIMESTEPS}]"
            )
        if self.neurons is not None:
            if isinstance(self.neurons, list):
                object.__setattr__(self, "neurons", tuple(self.neurons))
            if not isinstance(self.neurons, tuple) or len(self.neurons) != 2:
                raise TypeError(f"neurons must be a (start, stop) pair, not {self.neurons!r}")
            full = self.layer_neurons
            start = check_int("neurons start", self.neurons[0], 0, full - 1)
            check_int("neurons stop", self.neurons[1], start + 1, full)
        n_out = self.n_out
        check_int("lanes", self.lanes, 1, n_out)
        if n_out % self.lanes:
            divisors = [d for d in range(1, n_out + 1) if n_out % d == 0]
            raise ConfigError(
                f"lanes = {self.lanes} does not divide the layer's {n_out} neurons: "
                f"allowed {divisors}"
            )
        check_int("lr_range", self.lr_range, 1, 16)
        if self.emit_error is not None and not isinstance(self.emit_error, bool):
            raise TypeError(f"emit_error must be a bool or None, not {self.emit_error!r}")
        object.__setattr__(
            self, "_resolved_emit", self.layer > 0 if self.emit_error is None else self.emit_error
        )
        if not isinstance(self.linked, bool):
            raise TypeError(f"linked must be a bool, not {self.linked!r}")
        if self.linked and self.layer > 0 and not self._resolved_emit:
            raise ConfigError(
                f"emit_error = False on linked layer {self.layer}: a linked core of a layer > 0 "
                "must send e_prev to the previous layer; allowed: True"
            )
        if self.device not in ECP5_DEVICES:
            ecp5_device(self.device)  # raises with the allowed names
        row = max(self.n_in, self.n_out)  # the longest row of a writable quantity
        if self.write_buffer is None:
            largest = max(self.n_out * self.n_in, self.timesteps * self.n_out)
            object.__setattr__(self, "write_buffer", max(row, min(WRITE_BUFFER, largest)))
        check_int("write_buffer", self.write_buffer, row, MAX_WRITE_BUFFER)
        # Widths that must fit the 32-bit host words and the datapath.
        check_int("w_bits + frac_bits (master weight width)", net.master_bits, 2, BUS_BITS)
        check_int("v_bits", net.v_bits, net.w_bits + 1, BUS_BITS)
        check_int("acc_bits", net.acc_bits, net.g_bits, BUS_BITS)
        check_int("g_bits", net.g_bits, 2, 16)
        if net.theta.bit_length() > net.v_bits - 1:
            raise ConfigError(
                f"theta = {net.theta} does not fit v_bits = {net.v_bits}: "
                f"allowed [1, {(1 << (net.v_bits - 1)) - 1}]"
            )
        check_int("lr_shift + lr_range - 1", net.lr_shift + self.lr_range - 1, net.lr_shift, 40)
        if self.u_max > 31:
            raise ConfigError(
                f"lr_shift - frac_bits = {self.u_max} (with lr_range) is out of range for the "
                "update's LFSR draw: allowed [0, 31]"
            )
        if self.emits_error:
            check_int("w_bits + g_bits + clog2(neurons) (e_prev width)", self.eprev_bits, 2, 32)
        check_int("timesteps * n_in (event capacity)", net.timesteps * self.n_in, 1, 1 << 20)
        device = ecp5_device(self.device)
        if self.bram_estimate > device.brams:
            detail = ", ".join(f"{m.name} {m.bram_estimate}" for m in self.memories)
            raise ConfigError(
                f"memories need about {self.bram_estimate} block RAMs ({detail}) but ECP5 "
                f"{self.device} has {device.brams}: allowed at most {device.brams}"
            )

    # -- sizes -------------------------------------------------------------------------------
    @property
    def n_in(self) -> int:
        return self.net.weight_shapes()[self.layer][1]

    @property
    def layer_neurons(self) -> int:
        """Neurons of the whole layer (``n_out`` unless the layer is split)."""
        return self.net.weight_shapes()[self.layer][0]

    @property
    def neuron_offset(self) -> int:
        """Index in the layer of this core's first neuron."""
        return 0 if self.neurons is None else self.neurons[0]

    @property
    def neuron_range(self) -> tuple[int, int]:
        """``(start, stop)`` of this core's neurons in its layer."""
        return self.neuron_offset, self.neuron_offset + self.n_out

    @property
    def n_out(self) -> int:
        """Neurons this core computes."""
        return self.layer_neurons if self.neurons is None else self.neurons[1] - self.neurons[0]

    @property
    def split(self) -> bool:
        """Whether the core computes only part of its layer."""
        return self.n_out != self.layer_neurons

    @property
    def groups(self) -> int:
        """``G = n_out / P``: neuron groups, one memory word each."""
        return self.n_out // self.lanes

    @property
    def timesteps(self) -> int:
        return self.net.timesteps

    @property
    def emits_error(self) -> bool:
        """Whether the backward pass computes ``e_prev`` for a previous layer."""
        return self._resolved_emit

    @property
    def spikes_in(self) -> bool:
        """Input spikes arrive on the ``spk_i`` link (a linked core of a layer > 0)."""
        return self.linked and self.layer > 0

    @property
    def spikes_out(self) -> bool:
        """Spikes leave on the ``spk_o`` link (a linked core below the last layer)."""
        return self.linked and self.layer < self.net.n_layers - 1

    @property
    def errors_in(self) -> bool:
        """The external error arrives on the ``err_i`` link (a linked core below the last
        layer)."""
        return self.spikes_out

    @property
    def errors_out(self) -> bool:
        """``e_prev`` leaves on the ``err_o`` link (a linked core of a layer > 0)."""
        return self.spikes_in

    # -- widths ------------------------------------------------------------------------------
    @property
    def current_bits(self) -> int:
        """Exact synaptic current ``sum W`` over up to ``n_in`` spikes."""
        return self.net.w_bits + clog2(self.n_in + 1)

    @property
    def partial_bits(self) -> int:
        """Exact ``sum_j W[j][i] delta[t][j]`` over this core's neurons (signed)."""
        return self.net.w_bits + self.net.g_bits + clog2(self.n_out)

    @property
    def eprev_bits(self) -> int:
        """Width of ``e_prev`` words: ``g_bits`` (rounded, saturated) or, on a split core, the
        exact partial sum."""
        return self.partial_bits if self.split else self.net.g_bits

    @property
    def count_bits(self) -> int:
        """Spike counts ``0 .. T`` (unsigned)."""
        return clog2(self.timesteps + 1)

    @property
    def u_min(self) -> int:
        """Smallest update shift ``U = L - frac_bits`` the runtime register allows."""
        return self.net.lr_shift - self.net.frac_bits

    @property
    def u_max(self) -> int:
        return self.u_min + self.lr_range - 1

    @property
    def lr_min(self) -> int:
        return self.net.lr_shift

    @property
    def lr_max(self) -> int:
        return self.net.lr_shift + self.lr_range - 1

    # -- memories ----------------------------------------------------------------------------
    @property
    def loads_spikes(self) -> bool:
        """The host loads the input spikes (LOAD_SPIKES), into the spare one of two event banks;
        a core fed by a spike link has one bank, which the link writes."""
        return not self.spikes_in

    @property
    def event_banks(self) -> int:
        return 2 if self.loads_spikes else 1

    @property
    def memories(self) -> list[MemorySpec]:
        n, t, g, p = self.n_in, self.timesteps, self.groups, self.lanes
        net = self.net
        b = self.event_banks
        banks = " (two banks: LOAD_SPIKES fills the spare one)" if b == 2 else ""
        fused = self.fused_grads
        second = 1 if fused else 2  # the WG engine's read ports
        grads = "gradient accumulators, word (g, i)"
        mems = [
            MemorySpec(
                "weights",
                g * n,
                net.master_bits,
                p,
                "master weights, word (g, i)",
                packed=self.dense_weights,
            ),
            *([] if fused else [MemorySpec("grads", g * n, net.acc_bits, p, grads)]),
            # a lane is u and the forward engine's spike bit (hw.datapath.membrane_layout)
            MemorySpec("membranes", t * g, net.v_bits + 1, p, "u[t] and s[t] history, word (t, g)"),
            MemorySpec("deltas", t * g, net.g_bits, p, "delta[t] history, word (t, g)", second),
            MemorySpec("errors", t * g, net.g_bits, p, "external error e[t], word (t, g)"),
            # BP writes it in the delta phase; BP's error phase and WG read it (two ports).
            MemorySpec(
                "nonzero",
                t * (g + 1),
                max(1, clog2(g + 1)),
                1,
                "groups with a nonzero delta[t], word (t, k); word (t, G): their count K[t]",
                second,
                distributed=t * (g + 1) <= DISTRIBUTED_DEPTH,
            ),
            MemorySpec("counts", g, self.count_bits, p, "spike counts, word g"),
            MemorySpec("lfsr", g, 32, p, "update LFSR states, word g"),
            MemorySpec("events", b * t * n, max(1, clog2(n)), 1, f"input spike indices{banks}"),
            MemorySpec(
                "event_heads", b * t, self.event_ptr_bits + clog2(n + 1), 1, f"start, count{banks}"
            ),
            MemorySpec(
                "stage", self.write_buffer, BUS_BITS, 1, "WRITE staging buffer", owner="host"
            ),
        ]
        if fused:
            what = "input spikes x[t][i] (bit t), word i"
            # Yosys maps a mask this small to LUT RAM by itself (a 128 x 8 one, for instance).
            small = n <= DISTRIBUTED_DEPTH
            mems.append(MemorySpec("mask", n, t, 1, what, distributed=small))
        if self.emits_error:
            what = "partial sum of e_prev[t][i]" if self.split else "e_prev[t][i]"
            mems.append(MemorySpec("eprev", t * n, self.eprev_bits, 1, what))
        if self.rate_encoder:
            what = "rate encoder: LFSR state and intensity per input"
            mems.append(MemorySpec("encoder", n, 32 + net.in_bits, 1, what, owner="host"))
        return mems

    @property
    def memory_map(self) -> dict[str, MemorySpec]:
        """:attr:`memories` by name."""
        return {m.name: m for m in self.memories}

    @staticmethod
    def checked(params: Any) -> CoreParams:
        """``params`` itself if it is a :class:`CoreParams`; a component constructor's guard."""
        if not isinstance(params, CoreParams):
            raise TypeError(f"params must be a CoreParams, not {params!r}")
        return params

    @property
    def event_ptr_bits(self) -> int:
        """Bits of an event pointer within one bank."""
        return max(1, clog2(self.timesteps * self.n_in))

    @property
    def bram_estimate(self) -> int:
        """Block RAMs of all memories (:attr:`MemorySpec.bram_estimate`)."""
        return sum(m.bram_estimate for m in self.memories)

    def lfsr_seeds(self) -> list[int]:
        """Initial update-LFSR state of every row ``j``: ``seed_state(lfsr_seed, layer, j)``."""
        from spikeforge.sw.lfsr_spec import seed_word

        j0 = self.neuron_offset
        return [seed_word(self.net.lfsr_seed, self.layer, j0 + j) for j in range(self.n_out)]

    # -- identity ----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Module name of the generated Verilog top."""
        return "spikeforge_core"

    @property
    def core_hash(self) -> str:
        """16 hex digits of SHA-256 over :meth:`to_dict` (the INFO command returns 64 bits)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "net": self.net.to_dict(),
            "net_hash": self.net.config_hash,
            **({"rate_encoder": True} if self.rate_encoder else {}),
            **({"fused_grads": True} if self.fused_grads else {}),
            **({"dense_weights": True} if self.dense_weights else {}),
            "layer": self.layer,
            "lanes": self.lanes,
            "lr_range": self.lr_range,
            "emit_error": self.emits_error,
            **({} if self.neurons is None else {"neurons": list(self.neurons)}),
            **({"linked": True} if self.linked else {}),
            "device": self.device,
            "write_buffer": self.write_buffer,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CoreParams:
        """The inverse of :meth:`to_dict` (``net_hash``, if present, must match the network)."""
        data = dict(data)
        net = SnnConfig.from_dict(data.pop("net"))
        expected = data.pop("net_hash", net.config_hash)
        if expected != net.config_hash:
            raise ConfigError(
                f"net_hash {expected!r} does not match the network ({net.config_hash})"
            )
        return cls.checked(cls(net=net, **data))


def core_table(table: Any, where: str = "the config") -> dict[str, Any]:
    """The keys of a ``[core]`` table, checked against :data:`CORE_KEYS`.

    Parameters
    ----------
    table : dict
        The table as read (:func:`~spikeforge.sw.config.read_config_toml`) or given.
    where : str
        Where it comes from, for the messages (e.g. the file's name).

    Returns
    -------
    dict
        A copy: keyword arguments of :class:`CoreParams` besides ``net`` (their values are
        checked when it is built).

    Raises
    ------
    ConfigError
        If ``table`` is not a table or has a key outside :data:`CORE_KEYS` (the message lists
        the allowed keys).
    """
    if not isinstance(table, dict):
        raise ConfigError(f"core in {where} must be a [core] table, not {table!r}")
    unknown = sorted(set(table) - CORE_KEYS)
    if unknown:
        raise ConfigError(
            f"unknown [core] key(s) {', '.join(unknown)}; allowed keys: "
            f"{', '.join(sorted(CORE_KEYS))}"
        )
    return dict(table)


CORE_KEYS = frozenset(
    {
        "layer",
        "lanes",
        "lr_range",
        "emit_error",
        "neurons",
        "linked",
        "device",
        "write_buffer",
        "rate_encoder",
        "fused_grads",
        "dense_weights",
    }
)

DEFAULT_CORE_NET = SnnConfig(layers=(64, 64), timesteps=8)
"""The default core of the resource table: 64 inputs, 64 neurons, 8-bit weights, T = 8."""
