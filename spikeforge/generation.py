"""``sf.generate``: write the Verilog of a config's core or array, as ``spikeforge generate``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeforge.codesign.host_stream import stream_template
from spikeforge.codesign.mapping import Mapping
from spikeforge.hw.generate import generate as generate_core
from spikeforge.hw.generate import generate_array
from spikeforge.hw.generate import lint as verilator_lint
from spikeforge.hw.params import CoreParams
from spikeforge.loader import Config
from spikeforge.sw.config import SnnConfig

__all__ = ["Generated", "generate"]


@dataclass(frozen=True)
class Generated:
    """What :func:`generate` wrote.

    Attributes
    ----------
    out : Path
        The output folder.
    verilog : Path
        The Verilog top (``spikeforge_core.v`` or ``spikeforge_array.v``).
    manifest : dict
        The manifest (also written as ``out/manifest.json``).
    design : CoreParams or Mapping
        The core, or the array's mapping (written as ``out/mapping.json``).
    lint_warnings : list of str or None
        ``verilator --lint-only -Wall``'s warnings (with the waivers) if it ran.
    """

    out: Path
    verilog: Path
    manifest: dict[str, Any]
    design: CoreParams | Mapping
    lint_warnings: list[str] | None = None

    @property
    def is_array(self) -> bool:
        return isinstance(self.design, Mapping)

    def to_dict(self) -> dict[str, Any]:
        """The summary ``spikeforge generate --json`` prints: paths, hash, memories (one core)
        or cores and layers (an array)."""
        summary: dict[str, Any] = {
            "out": str(self.out),
            "verilog": str(self.verilog),
            "manifest": str(self.out / "manifest.json"),
        }
        man = self.manifest
        if self.is_array:
            summary.update(
                mapping=str(self.out / "mapping.json"),
                array_hash=man["array_hash"],
                cores=self.design.cores,
                cores_per_layer=list(self.design.cores_per_layer),
                layers=man["layers"],
            )
        else:
            summary.update(
                core_hash=man["core_hash"],
                memories={m["name"]: m["bits"] for m in man["memories"]},
            )
        if self.lint_warnings is not None:
            summary["lint_warnings"] = self.lint_warnings
        return summary


def generate(
    config: Config | SnnConfig, *, out: str | Path, checks: bool = True, lint: bool = False
) -> Generated:
    """Write the Verilog and manifest of ``config``'s core, or of its array and mapping.

    Parameters
    ----------
    config : Config or SnnConfig
        What :func:`~spikeforge.loader.load_config` returned: one core
        (:meth:`~spikeforge.loader.Config.core_params`) or, with ``cores`` or an ``[array]``
        table, the array the network maps onto (:meth:`~spikeforge.loader.Config.mapping`). A
        bare network is one core of its first layer with the default ``[core]`` keys.
    out : str or Path
        Output folder (created if missing).
    checks : bool
        Keep the read-during-write assertions and the ``rw_checked`` output every simulation
        build carries (``False`` for synthesis in another tool).
    lint : bool
        Also run ``verilator --lint-only -Wall`` (with the waivers); the warnings are returned.

    Returns
    -------
    Generated
        The paths, the manifest and the design; :meth:`Generated.to_dict` is the CLI's summary.

    Raises
    ------
    ConfigError
        If the core or the mapping is invalid (before anything is elaborated or written).
    """
    if isinstance(config, SnnConfig):
        config = Config(net=config)
    elif not isinstance(config, Config):
        raise TypeError(f"config must be a Config (sf.load_config) or an SnnConfig, not {config!r}")
    if not isinstance(checks, bool) or not isinstance(lint, bool):
        raise TypeError("checks and lint must be bools")
    out = Path(out)
    if config.is_array:
        mapping = config.mapping()
        man = generate_array(list(mapping.core_params()), out, checks=checks)
        recorded = {**mapping.to_dict(), "train_step_stream": stream_template(man["layers"])}
        (out / "mapping.json").write_text(json.dumps(recorded, indent=2) + "\n")
        design: CoreParams | Mapping = mapping
    else:
        design = config.core_params()
        man = generate_core(design, out, checks=checks)
    verilog = out / man["verilog"]
    warnings = verilator_lint(verilog) if lint else None
    return Generated(out=out, verilog=verilog, manifest=man, design=design, lint_warnings=warnings)
