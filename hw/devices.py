"""Lattice ECP5 devices the synthesis flow (:mod:`spikeforge.hw.synth`) can target.

The resource counts are those of the LFE5U parts as nextpnr-ecp5 models them (the ``available``
column of its ``--report`` utilisation, which agrees with the Lattice ECP5 family data sheet):

======  ==========  ======  ======  =================  ====================
name    part        LUT4    FF      BRAM (DP16KD)      DSP (MULT18X18D)
======  ==========  ======  ======  =================  ====================
25k     LFE5U-25F   24288   24288   56                 28
45k     LFE5U-45F   43848   43848   108                72
85k     LFE5U-85F   83640   83640   208                156
======  ==========  ======  ======  =================  ====================

All of them are placed in the CABGA381 package. :data:`DEVICE_NAMES` is the one list of device
names the CLI, the core parameters, the mapping and the co-design space accept. This module is
pure Python: it imports neither Amaranth nor torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from spikeforge.sw.config import ConfigError

__all__ = ["DEFAULT_DEVICE", "DEVICE_NAMES", "ECP5_DEVICES", "Ecp5Device", "ecp5_device"]


@dataclass(frozen=True)
class Ecp5Device:
    """One ECP5 part and the resources the fit check compares against.

    Attributes
    ----------
    name : str
        Short name used throughout spikeforge, e.g. ``"85k"``.
    nextpnr_flag : str
        Device option of ``nextpnr-ecp5``, e.g. ``"--85k"``.
    package : str
        Package passed to ``nextpnr-ecp5 --package``.
    luts : int
        Number of LUT4s (nextpnr ``TRELLIS_COMB`` sites).
    ffs : int
        Number of flip-flops (nextpnr ``TRELLIS_FF`` sites).
    brams : int
        Number of 18 kbit block RAMs (``DP16KD``).
    dsps : int
        Number of 18x18 multipliers (``MULT18X18D``).
    """

    name: str
    nextpnr_flag: str
    package: str
    luts: int
    ffs: int
    brams: int
    dsps: int

    @property
    def part(self) -> str:
        """The Lattice part number, e.g. ``"LFE5U-85F"``."""
        return f"LFE5U-{self.name[:-1].upper()}F"


ECP5_DEVICES: dict[str, Ecp5Device] = {
    "25k": Ecp5Device("25k", "--25k", "CABGA381", luts=24288, ffs=24288, brams=56, dsps=28),
    "45k": Ecp5Device("45k", "--45k", "CABGA381", luts=43848, ffs=43848, brams=108, dsps=72),
    "85k": Ecp5Device("85k", "--85k", "CABGA381", luts=83640, ffs=83640, brams=208, dsps=156),
}
"""Known devices, keyed by short name."""

DEVICE_NAMES: tuple[str, ...] = tuple(ECP5_DEVICES)
"""The short names of :data:`ECP5_DEVICES`, smallest first: the allowed ``device`` values."""

DEFAULT_DEVICE = "85k"
"""The device used when none is given: the largest ECP5."""


def ecp5_device(name: str = DEFAULT_DEVICE) -> Ecp5Device:
    """Look up an ECP5 device by its short name.

    Parameters
    ----------
    name : str, optional
        One of :data:`DEVICE_NAMES`. Default :data:`DEFAULT_DEVICE`.

    Returns
    -------
    Ecp5Device
        The device's description.

    Raises
    ------
    ConfigError
        If ``name`` is not a known device; the message names the value and the allowed names
        (a :class:`ValueError`).
    """
    try:
        return ECP5_DEVICES[name]
    except (KeyError, TypeError):
        allowed = ", ".join(DEVICE_NAMES)
        raise ConfigError(f"device = {name!r} is not known: allowed {allowed}") from None
