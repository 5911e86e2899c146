"""Energy per sample: the engines' operations on measured spike counts times a per-op table.

An **estimate** for ranking design points, not a power measurement (docs/energy.md). The
operation counts follow what the engines do (docs/core.md); the energies are Horowitz's 45 nm
figures (ISSCC 2014), scaled to each operand width:

* ``add(b)  = 0.03 + (0.1 - 0.03) * (b - 8) / 24`` pJ (linear through 8 and 32 bits);
* ``mul(a, b) = 0.2 * a * b / 64`` pJ (proportional to the operand widths' product:
  8 x 8 = 0.2 pJ, 32 x 32 = 3.2 pJ against the table's 3.1);
* on-chip memory: ``10 / 64`` pJ per bit read or written (a 64-bit read of an 8 KB SRAM);
* off-chip (the host's DRAM): ``1300 / 8`` pJ per byte (1.3 nJ per 64 bits, the low end).

Per core and sample, with ``a[t]`` mean input spikes, ``n`` neurons of the slice, ``m`` inputs:

* FP: ``sum_t a[t] n`` weight reads (``w_bits``) and current adds; per neuron and timestep
  leak, integrate and threshold (3 adds at ``v_bits``), a membrane read and write and a
  history write (``v_bits``) and a spike bit;
* BP: per neuron and timestep a history read, the surrogate (2 adds at ``v_bits``), one
  ``g x g`` multiply and error/delta read and write (``g_bits``); BPTT adds the temporal term
  (1 add); a core that emits an error adds ``m n T`` MACs (``w x g`` multiply, add at the
  partial width) and as many weight reads;
* WG: ``sum_t a[t] n`` accumulator read-add-writes (``acc_bits``) and delta reads;
* update: ``m n`` master-weight and accumulator reads, a rounding add, the master write and the
  accumulator clear.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spikeforge.hw.params import CoreParams

__all__ = ["ENERGY_TABLE", "EnergyEstimate", "energy_estimate", "sample_ops"]

ENERGY_TABLE: dict[str, float] = {
    "add8_pj": 0.03,
    "add32_pj": 0.1,
    "mul8_pj": 0.2,
    "sram_bit_pj": 10.0 / 64,
    "dram_byte_pj": 1300.0 / 8,
}
"""Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014, 45 nm."""


def _add(bits: int, t: dict[str, float]) -> float:
    return max(0.005, t["add8_pj"] + (t["add32_pj"] - t["add8_pj"]) * (bits - 8) / 24)


def _mul(a: int, b: int, t: dict[str, float]) -> float:
    return t["mul8_pj"] * a * b / 64


def _check(cores: Sequence[CoreParams], active: Sequence[Sequence[float]]) -> None:
    if not cores or not all(isinstance(p, CoreParams) for p in cores):
        raise TypeError(f"cores must be a non-empty sequence of CoreParams, not {cores!r}")
    net = cores[0].net
    if len(active) != net.n_layers + 1:
        raise ValueError(
            f"active must have {net.n_layers + 1} rows (the input and every layer), "
            f"not {len(active)}"
        )
    for i, row in enumerate(active):
        if len(row) != net.timesteps or any(v < 0 for v in row):
            raise ValueError(
                f"active[{i}] must hold {net.timesteps} counts >= 0 (one per timestep), "
                f"not {list(row)!r}"
            )


def sample_ops(
    cores: Sequence[CoreParams], active: Sequence[Sequence[float]], table=ENERGY_TABLE
) -> dict[str, float]:
    """Energy in pJ per engine of one training sample (``fp`` alone is inference)."""
    _check(cores, active)
    t = table
    bit = t["sram_bit_pj"]
    out = dict.fromkeys(("fp", "bp", "wg", "update"), 0.0)
    for p in cores:
        net = p.net
        n, m, T = p.n_out, p.n_in, net.timesteps
        w, v, g, acc = net.w_bits, net.v_bits, net.g_bits, net.acc_bits
        master = net.master_bits
        events = sum(active[p.layer]) * n
        out["fp"] += events * (w * bit + _add(p.current_bits, t))
        out["fp"] += n * T * (3 * _add(v, t) + 3 * v * bit + bit)
        per = 2 * _add(v, t) + _mul(g, g, t) + v * bit + 2 * g * bit
        if net.bptt == "bptt":
            per += _add(g, t)
        out["bp"] += n * T * per
        if p.emits_error:
            out["bp"] += m * n * T * (_mul(w, g, t) + _add(p.partial_bits, t) + w * bit)
        out["wg"] += events * (_add(acc, t) + 2 * acc * bit + g * bit)
        out["update"] += m * n * (_add(master, t) + 2 * master * bit + 2 * acc * bit)
    return out


@dataclass(frozen=True)
class EnergyEstimate:
    """Estimated dynamic energy of one sample, in pJ."""

    infer_pj: float
    train_pj: float
    breakdown: dict[str, float]

    @property
    def samples_per_joule(self) -> float:
        """Training samples per joule (= samples/s per watt), dynamic energy only."""
        return 1e12 / self.train_pj

    @property
    def infer_per_joule(self) -> float:
        return 1e12 / self.infer_pj

    def to_dict(self) -> dict[str, Any]:
        return {
            "infer_pj": self.infer_pj,
            "train_pj": self.train_pj,
            "breakdown": dict(self.breakdown),
            "samples_per_joule": self.samples_per_joule,
        }


def energy_estimate(
    cores: Sequence[CoreParams],
    active: Sequence[Sequence[float]],
    *,
    host_bytes: float = 0.0,
    table=ENERGY_TABLE,
) -> EnergyEstimate:
    """:func:`sample_ops` plus ``host_bytes`` of off-chip traffic at the DRAM rate."""
    if host_bytes < 0:
        raise ValueError(f"host_bytes must be >= 0, not {host_bytes!r}")
    parts = sample_ops(cores, active, table)
    parts["host_io"] = host_bytes * table["dram_byte_pj"]
    infer = parts["fp"] + parts["host_io"]
    return EnergyEstimate(infer_pj=infer, train_pj=sum(parts.values()), breakdown=parts)
