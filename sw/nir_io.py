"""NIR in and out: a feed-forward chain of dense layers and LIF neurons, both ways.

The Neuromorphic Intermediate Representation (NIR, PyPI ``nir``) is what snnTorch, Norse,
SpikingJelly and others read and write. This module maps one NIR graph shape onto the integer
contract of docs/arithmetic.md and back; the mapping and where it differs are documented there
(§8):

* ``Input -> (Linear | Affine -> LIF)+ -> Output``, nothing else. Every other node, a branch or a
  cycle is refused with the node's name and the reason (:class:`NirError`); ``approximate=True``
  only widens what is mapped for the leak (a ``tau`` that is not ``dt * 2**k``, and ``IF``), and
  each approximation is reported with the error it makes.
* The leak ``u - (u >> k)`` is ``tau = dt * 2**k``, ``r = 2**k`` (input gain ``r dt / tau = 1``),
  ``v_leak = 0``; the chip has one ``leak_shift`` for every layer.
* Thresholds become the integer ``theta``: row ``j`` of a layer is scaled by
  ``theta / v_threshold[j]`` (times its input gain), so the chip fires where the float neuron
  does; ``theta`` is the default ``2**(w_bits - 2)`` unless a weight would then saturate, in
  which case it is the largest that keeps every weight in ``w_bits``. Weights are rounded to
  nearest (ties toward +inf) and saturated; the error is reported per layer.
* NIR resets to ``v_reset``: the import sets ``reset = "zero"`` and refuses a non-zero
  ``v_reset``; a network trained with ``reset = "subtract"`` is exported as reset-to-zero, and
  the export says so.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nir
import numpy as np
import torch

from .config import NIR_DT, ConfigError, SnnConfig

__all__ = [
    "Imported",
    "LayerQuantization",
    "NirError",
    "export_graph",
    "import_graph",
    "read_graph",
    "write_graph",
]

TAU_RTOL = 1e-5
"""Relative tolerance of ``tau = dt * 2**k`` (float32 files carry ``dt / (1 - beta)``)."""

REFUSED = {
    "Conv1d": "a convolution: the cores compute dense layers only",
    "Conv2d": "a convolution: the cores compute dense layers only",
    "SumPool2d": "pooling: the cores compute dense layers only",
    "AvgPool2d": "pooling: the cores compute dense layers only",
    "Flatten": "a reshape: give the graph a flat (1-D) input",
    "CubaLIF": "a current-based LIF (tau_syn): the chip's neurons have no synaptic current state",
    "CubaLI": "a current-based leaky integrator: the chip's neurons have no synaptic current",
    "LI": "a leaky integrator without spikes: every chip layer is a spiking LIF layer",
    "I": "an integrator without spikes: every chip layer is a spiking LIF layer",
    "Threshold": "a bare threshold: every chip layer is a spiking LIF layer",
    "Delay": "a synaptic delay: the chip has none",
    "Scale": "a Scale node: fold the factor into the weights before export",
    "NIRGraph": "a subgraph (snnTorch writes recurrent layers so): the chip is feed-forward",
}
"""NIR node types that are never mapped, with the reason."""

DIFFERENCES = (
    "spikes: the chip fires at u >= theta, NIR at u > v_threshold",
    "leak: the chip's u - (u >> k) rounds toward +inf; NIR multiplies by beta exactly",
)
"""Where a NIR reader and the chip differ for every network (docs/arithmetic.md, section 8)."""


class NirError(ConfigError):
    """A NIR file or graph spikeforge cannot run; the message names the node and the reason."""


@dataclass(frozen=True)
class LayerQuantization:
    """How one weight layer came through the import: scale, rounding error, saturation."""

    layer: int
    linear: str
    neuron: str
    shape: tuple[int, int]
    max_error_lsb: float
    rms_relative_error: float
    saturated: int

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "shape": list(self.shape)}


@dataclass(frozen=True)
class Imported:
    """A NIR graph as a network config and its integer weights.

    ``weights`` are the forward weights (``w_bits`` wide, ``[n_out, n_in]``);
    :meth:`master_weights` shifts them into the master copy a :class:`GoldenModel` starts from.
    ``notes`` lists every approximation and every way the chip differs from the file.
    """

    config: SnnConfig
    weights: list[torch.Tensor]
    layers: list[LayerQuantization]
    notes: list[str] = field(default_factory=list)

    def master_weights(self) -> list[torch.Tensor]:
        return [w << self.config.frac_bits for w in self.weights]

    def to_dict(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "layers": list(cfg.layers),
            "leak_shift": cfg.leak_shift,
            "theta": cfg.theta,
            "w_bits": cfg.w_bits,
            "reset": cfg.reset,
            "quantization": [q.to_dict() for q in self.layers],
            "notes": list(self.notes),
        }


# -- reading and checking the graph -------------------------------------------------------------
def read_graph(path: str | Path) -> nir.NIRGraph:
    """Read a ``.nir`` (HDF5) file; a missing or unreadable file is a :class:`NirError`."""
    path = Path(path)
    if not path.is_file():
        raise NirError(f"NIR file {str(path)!r} does not exist")
    try:
        graph = nir.read(path)
    except Exception as exc:  # h5py and nir raise several types for a file that is not NIR
        raise NirError(f"{str(path)!r} is not a readable NIR file: {exc}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NirError(f"{str(path)!r} holds a single {type(graph).__name__} node, not a graph")
    return graph


def write_graph(path: str | Path, graph: nir.NIRGraph) -> Path:
    """Write ``graph`` as a ``.nir`` (HDF5) file, its folder made if missing; a path that
    cannot be written (a folder, no permission, ...) is a :class:`NirError` naming it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        nir.write(path, graph)
    except OSError as exc:  # h5py: "Unable to create file"; mkdir: PermissionError, ...
        said = re.search(r"error message = '([^']*)'", str(exc))
        reason = said.group(1) if said else (exc.strerror or str(exc))
        raise NirError(f"cannot write the NIR file {str(path)!r}: {reason}") from None
    return path


def _chain(graph: nir.NIRGraph) -> list[str]:
    """The node names from the one Input to the one Output, refusing branches and cycles."""
    inputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    outputs = [n for n, node in graph.nodes.items() if isinstance(node, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NirError(
            f"the graph has {len(inputs)} Input and {len(outputs)} Output nodes: spikeforge "
            "runs one chain from one Input to one Output"
        )
    after: dict[str, list[str]] = {}
    before: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in graph.nodes:
                raise NirError(f"edge {src!r} -> {dst!r} names a node the graph does not have")
        after.setdefault(src, []).append(dst)
        before.setdefault(dst, []).append(src)
    _refuse_cycles(after)
    order, name, seen = [inputs[0]], inputs[0], {inputs[0]}
    while name != outputs[0]:
        nxt = after.get(name, [])
        if len(nxt) != 1:
            what = "no outgoing edge" if not nxt else f"{len(nxt)} outgoing edges ({nxt})"
            raise NirError(f"node {name!r} has {what}: spikeforge runs a chain of layers")
        name = nxt[0]
        if len(before.get(name, [])) != 1:
            raise NirError(
                f"node {name!r} has {len(before[name])} incoming edges ({before[name]}): "
                "spikeforge runs a chain of layers"
            )
        seen.add(name)
        order.append(name)
    unused = sorted(set(graph.nodes) - seen)
    if unused:
        raise NirError(f"node(s) {', '.join(map(repr, unused))} are not on the Input-Output chain")
    return order


def _refuse_cycles(after: dict[str, list[str]]) -> None:
    """Depth-first search; an edge back to a node on the current path is a recurrence."""
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for root in after:
        stack = [(root, iter(after.get(root, [])))]
        if state.get(root):
            continue
        state[root] = 1
        while stack:
            node, rest = stack[-1]
            nxt = next(rest, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                raise NirError(
                    f"recurrent connection: the edge {node!r} -> {nxt!r} closes a cycle, and "
                    "the chip runs feed-forward layers"
                )
            elif not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(after.get(nxt, []))))


def _vector(name: str, what: str, value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = arr.reshape(-1)
    if arr.size != n:
        raise NirError(f"node {name!r}: {what} has {arr.size} values for {n} neurons")
    if not np.all(np.isfinite(arr)):
        raise NirError(f"node {name!r}: {what} is not finite")
    return arr


@dataclass
class _Layer:
    linear: str
    neuron: str
    weight: np.ndarray  # [n_out, n_in], float
    gain: np.ndarray  # [n_out]: r dt / tau
    threshold: np.ndarray  # [n_out]
    k: np.ndarray  # [n_out] float log2(tau / dt), or inf for IF


def _dense(name: str, node: Any) -> np.ndarray:
    if isinstance(node, nir.Affine):
        bias = np.asarray(node.bias, dtype=np.float64)
        if np.any(bias != 0):
            raise NirError(
                f"node {name!r} (Affine) has a non-zero bias: the chip's neurons have no bias "
                "input (export the layer without a bias)"
            )
    elif not isinstance(node, nir.Linear):
        raise NirError(_refusal(name, node, "a Linear or Affine layer"))
    weight = np.asarray(node.weight, dtype=np.float64)
    if weight.ndim != 2:
        raise NirError(f"node {name!r}: weight has shape {weight.shape}, not [n_out, n_in]")
    if not np.all(np.isfinite(weight)):
        raise NirError(f"node {name!r}: weight is not finite")
    return weight


def _refusal(name: str, node: Any, wanted: str) -> str:
    kind = type(node).__name__
    reason = REFUSED.get(kind, f"{kind} is not a node spikeforge maps")
    return f"node {name!r} ({kind}) cannot run on the chip: {reason}; expected {wanted} here"


def _neuron(name: str, node: Any, n: int, dt: float, approximate: bool) -> tuple[np.ndarray, ...]:
    """(gain, threshold, k) of a LIF (or, approximated, IF) node of ``n`` neurons."""
    if isinstance(node, nir.IF):
        if not approximate:
            raise NirError(
                f"node {name!r} (IF) cannot run on the chip: it never leaks, and the chip's "
                "leak u - (u >> k) always does (k <= 16); approximate=True (--approximate) "
                "maps it to k = 16"
            )
        r = _vector(name, "r", node.r, n)
        threshold = _vector(name, "v_threshold", node.v_threshold, n)
        _check_reset(name, node, n)
        return r * dt, threshold, np.full(n, math.inf)  # NIR's IF: dv/dt = r I
    if not isinstance(node, nir.LIF):
        raise NirError(_refusal(name, node, "a LIF neuron layer after a Linear"))
    tau = _vector(name, "tau", node.tau, n)
    r = _vector(name, "r", node.r, n)
    v_leak = _vector(name, "v_leak", node.v_leak, n)
    threshold = _vector(name, "v_threshold", node.v_threshold, n)
    if np.any(v_leak != 0):
        raise NirError(
            f"node {name!r} (LIF) has v_leak = {v_leak[v_leak != 0][0]:g}: the chip's membranes "
            "decay toward 0"
        )
    _check_reset(name, node, n)
    if np.any(tau <= 0):
        raise NirError(f"node {name!r} (LIF): tau must be positive")
    return r * dt / tau, threshold, np.log2(tau / dt)


def _check_reset(name: str, node: Any, n: int) -> None:
    v_reset = _vector(name, "v_reset", getattr(node, "v_reset", 0.0), n)
    if np.any(v_reset != 0):
        raise NirError(
            f"node {name!r} has v_reset = {v_reset[v_reset != 0][0]:g}: the chip resets to 0 "
            "(or subtracts theta)"
        )


def _layers(graph: nir.NIRGraph, dt: float, approximate: bool) -> list[_Layer]:
    names = _chain(graph)[1:-1]
    if not names:
        raise NirError("the graph has no layer between its Input and Output")
    out: list[_Layer] = []
    for i in range(0, len(names), 2):
        lin = names[i]
        weight = _dense(lin, graph.nodes[lin])
        if i + 1 == len(names):
            raise NirError(
                f"node {lin!r} ({type(graph.nodes[lin]).__name__}) is not followed by a LIF "
                "layer: every chip layer is a spiking LIF layer"
            )
        neu = names[i + 1]
        gain, threshold, k = _neuron(neu, graph.nodes[neu], weight.shape[0], dt, approximate)
        if np.any(threshold <= 0):
            raise NirError(f"node {neu!r}: v_threshold must be positive")
        if np.any(gain <= 0):
            raise NirError(f"node {neu!r}: r must be positive (the input gain r dt / tau)")
        if out and out[-1].weight.shape[0] != weight.shape[1]:
            raise NirError(
                f"node {lin!r} takes {weight.shape[1]} inputs but the layer before it has "
                f"{out[-1].weight.shape[0]} neurons"
            )
        out.append(_Layer(lin, neu, weight, gain, threshold, k))
    return out


def _leak_shift(layers: list[_Layer], dt: float, approximate: bool, notes: list[str]) -> int:
    """The one ``leak_shift`` every layer shares."""
    ks = np.concatenate([layer.k for layer in layers])
    finite = np.isfinite(ks)  # IF neurons (approximate only) have k = inf: they count as 16
    kr = np.round(np.where(finite, ks, 16))
    off = finite & (
        (np.abs(np.exp2(np.where(finite, ks, kr) - kr) - 1) > TAU_RTOL) | (kr < 1) | (kr > 16)
    )
    if not off.any() and finite.all() and np.unique(kr).size == 1:
        return int(kr[0])
    if not approximate:
        if off.any():
            owners = [(layer.neuron, j) for layer in layers for j in range(len(layer.k))]
            i = int(np.argmax(off))
            (name, j), kj = owners[i], float(ks[i])
            raise NirError(
                f"node {name!r} (LIF) neuron {j}: tau = {dt * 2**kj:.6g} s is "
                f"not dt * 2**k for k in [1, 16] (dt = {dt:g} s): beta = 1 - dt/tau = "
                f"{1 - 2**-kj:.6g}, the chip's leak is 1 - 2**-k; approximate=True "
                "(--approximate) takes the nearest k"
            )
        first = {layer.neuron: int(np.round(layer.k[0])) for layer in layers}
        raise NirError(
            "the LIF layers have different time constants (k = "
            + ", ".join(f"{n!r}: {k}" for n, k in first.items())
            + "): the chip has one leak_shift for every layer; approximate=True "
            "(--approximate) takes the most common k"
        )
    k = int(np.bincount(np.clip(kr, 1, 16).astype(int)).argmax())
    beta_err = np.abs((1 - 2.0**-k) - (1 - np.exp2(-ks)))
    notes.append(
        f"approximated: leak_shift = {k} (beta = {1 - 2.0**-k:.6g}) for every neuron; the "
        f"largest beta error is {float(beta_err.max()):.3g} (IF neurons count as beta = 1)"
    )
    return k


def _theta(layers: list[_Layer], w_bits: int, theta: int | None, notes: list[str]) -> int:
    if theta is not None:
        return theta
    w_max = (1 << (w_bits - 1)) - 1
    ratio = max(float(np.abs(r.weight * (r.gain / r.threshold)[:, None]).max()) for r in layers)
    default = 1 << (w_bits - 2)
    if ratio * default <= w_max + 0.5:
        return default
    theta = math.floor((w_max + 0.5) / ratio)
    if theta < 1:
        raise NirError(
            f"a weight is {ratio:.3g} times its neuron's threshold: more than a {w_bits}-bit "
            "weight can hold with theta >= 1 (raise w_bits)"
        )
    notes.append(
        f"theta = {theta}, below the default {default}: the largest weight is {ratio:.3g} "
        "thresholds, and no weight may saturate"
    )
    return theta


def import_graph(
    graph: nir.NIRGraph,
    *,
    w_bits: int = SnnConfig.w_bits,
    timesteps: int = SnnConfig.timesteps,
    dt: float = NIR_DT,
    theta: int | None = None,
    approximate: bool = False,
    **fields: Any,
) -> Imported:
    """Map ``graph`` onto a network config and integer weights (see the module docstring).

    Parameters
    ----------
    graph : nir.NIRGraph
        ``Input -> (Linear | Affine -> LIF)+ -> Output``.
    w_bits, timesteps : int
        The chip's weight width and timesteps per sample (NIR carries neither).
    dt : float
        Seconds per timestep: ``tau = dt * 2**leak_shift`` (snnTorch writes ``dt = 1e-4``).
    theta : int, optional
        The integer threshold; default ``2**(w_bits - 2)``, lower if a weight would saturate.
    approximate : bool
        Map a ``tau`` that is not ``dt * 2**k`` (and ``IF``) to the nearest leak, with the
        error in :attr:`Imported.notes`, instead of refusing it.
    **fields
        Further :class:`SnnConfig` fields (``frac_bits``, ``bptt``, ...); the structural ones
        (``layers``, ``leak_shift``, ``reset``) come from the graph.

    Raises
    ------
    NirError
        A node, parameter or graph shape the chip cannot run, named with the reason.
    """
    fixed = sorted({"layers", "leak_shift", "reset"} & set(fields))
    if fixed:
        raise ConfigError(f"{', '.join(fixed)} come(s) from the NIR graph and cannot be given")
    if not (isinstance(dt, int | float) and dt > 0 and math.isfinite(dt)):
        raise ConfigError(f"dt must be a positive number of seconds, not {dt!r}")
    notes: list[str] = []
    layers = _layers(graph, dt, approximate)
    k = _leak_shift(layers, dt, approximate, notes)
    chosen = _theta(layers, w_bits, theta, notes)
    sizes = (layers[0].weight.shape[1], *(layer.weight.shape[0] for layer in layers))
    cfg = SnnConfig(
        layers=sizes,
        timesteps=timesteps,
        w_bits=w_bits,
        leak_shift=k,
        theta=chosen,
        reset="zero",
        **fields,
    )
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    weights, report = [], []
    for i, layer in enumerate(layers):
        target = layer.weight * (layer.gain / layer.threshold)[:, None] * cfg.theta  # in LSBs
        rounded = np.floor(target + 0.5)
        q = np.clip(rounded, lo, hi)
        inside = q == rounded
        err = np.abs(q - target)
        norm = float(np.sqrt((target**2).sum()))
        report.append(
            LayerQuantization(
                layer=i,
                linear=layer.linear,
                neuron=layer.neuron,
                shape=tuple(int(s) for s in layer.weight.shape),
                max_error_lsb=float(err[inside].max()) if inside.any() else 0.0,
                rms_relative_error=float(np.sqrt(((q - target) ** 2).sum())) / norm
                if norm
                else 0.0,
                saturated=int((~inside).sum()),
            )
        )
        weights.append(torch.from_numpy(q.astype(np.int64)))
    saturated = sum(q.saturated for q in report)
    if saturated:
        notes.append(f"{saturated} weight(s) saturated to the {w_bits}-bit range (theta given)")
    notes += DIFFERENCES
    return Imported(cfg, weights, report, notes)


# -- export -------------------------------------------------------------------------------------
def export_graph(
    cfg: SnnConfig, weights: list[torch.Tensor], *, dt: float = NIR_DT
) -> tuple[nir.NIRGraph, list[str]]:
    """A NIR graph of ``cfg`` with forward weights ``weights`` (``[n_out, n_in]`` each).

    Weights are written in LSBs and thresholds as ``theta``, so the file holds the integers
    exactly; ``tau = dt * 2**leak_shift``, ``r = 2**leak_shift``, ``v_leak = v_reset = 0``.
    Returns the graph and the notes on where a NIR reader will differ from the chip.
    """
    if cfg.encoder == "direct":
        raise ConfigError(
            "encoder = 'direct' feeds intensities as currents into the first layer, which NIR "
            "cannot express: export a network fed with spikes"
        )
    if len(weights) != cfg.n_layers:
        raise ValueError(f"{len(weights)} weight tensors for {cfg.n_layers} layers")
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([cfg.layers[0]])})}
    edges, prev = [], "input"
    for i, (w, shape) in enumerate(zip(weights, cfg.weight_shapes(), strict=True)):
        if tuple(w.shape) != shape:
            raise ValueError(f"weights[{i}] has shape {tuple(w.shape)}, not {shape}")
        n = shape[0]
        lin, neu = f"linear{i}", f"lif{i}"
        nodes[lin] = nir.Linear(weight=w.to(torch.float64).numpy().astype(np.float32))
        nodes[neu] = nir.LIF(
            tau=np.full(n, dt * 2**cfg.leak_shift, dtype=np.float32),
            r=np.full(n, 2.0**cfg.leak_shift, dtype=np.float32),
            v_leak=np.zeros(n, dtype=np.float32),
            v_threshold=np.full(n, float(cfg.theta), dtype=np.float32),
            v_reset=np.zeros(n, dtype=np.float32),
        )
        edges += [(prev, lin), (lin, neu)]
        prev = neu
    nodes["output"] = nir.Output(output_type={"output": np.array([cfg.layers[-1]])})
    edges.append((prev, "output"))
    notes = [*DIFFERENCES, "inputs: the file takes spikes; the chip's rate encoder is not in it"]
    if cfg.reset == "subtract":
        notes.append(
            "reset: this network subtracts theta after a spike (reset = 'subtract'), which NIR "
            "cannot express; the file resets to 0, so readers run a different network"
        )
    return nir.NIRGraph(nodes=nodes, edges=edges), notes
