"""ECP5 device capacities (placeholder until the synth flow lands)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ECP5_DEVICES", "Ecp5Device", "ecp5_device"]


@dataclass(frozen=True)
class Ecp5Device:
    name: str
    nextpnr_flag: str
    package: str
    luts: int
    ffs: int
    brams: int
    dsps: int


ECP5_DEVICES = {
    "25k": Ecp5Device("25k", "--25k", "CABGA381", 24288, 24288, 56, 28),
    "45k": Ecp5Device("45k", "--45k", "CABGA381", 43848, 43848, 108, 72),
    "85k": Ecp5Device("85k", "--85k", "CABGA381", 83640, 83640, 208, 156),
}


def ecp5_device(name: str) -> Ecp5Device:
    if name not in ECP5_DEVICES:
        raise ValueError(f"device = {name!r} is not known: allowed 25k, 45k, 85k")
    return ECP5_DEVICES[name]
