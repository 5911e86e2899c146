"""The Python API: what the ``spikeforge`` CLI does, as functions; the CLI calls them.

``import spikeforge as sf`` gives these names lazily (importing the package stays light)::

    config = sf.load_config("net.toml", timesteps=8)     # network + optional [core]/[array]
    result = sf.train(config, dataset="digits", epochs=5)
    built = sf.generate(config, out="build/core")
    imported = sf.import_nir("model.nir", w_bits=8, timesteps=16)
    toml, weights = sf.save_import(imported, "net.toml")
    sf.export_nir("runs/train/checkpoint.pt", "trained.nir")
    fed = sf.federate(config, workers=5, rounds=20, partition_spec="dirichlet:0.5")

Each lives in the module that owns it: :mod:`spikeforge.loader` (:func:`load_config`),
:mod:`spikeforge.training` (:func:`train`), :mod:`spikeforge.generation` (:func:`generate`),
:mod:`spikeforge.federation` (:func:`~spikeforge.federation.federate`, imported on first use:
it brings Dask);
the NIR functions are here.
"""

from __future__ import annotations

from pathlib import Path

from spikeforge.generation import Generated, generate
from spikeforge.loader import Config, load_config
from spikeforge.sw.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from spikeforge.sw.config import NIR_DT
from spikeforge.sw.fixed import shr_floor
from spikeforge.sw.golden import GoldenModel
from spikeforge.sw.nir_io import Imported, export_graph, import_graph, read_graph, write_graph
from spikeforge.training import initial_weights, train

__all__ = [
    "Config",
    "Generated",
    "export_nir",
    "generate",
    "import_nir",
    "initial_weights",
    "load_config",
    "save_import",
    "train",
]


def import_nir(path: str | Path, **options) -> Imported:
    """Read a NIR file and map it onto a network config and integer weights.

    ``path`` is a ``.nir`` file, ``Input -> (Linear | Affine -> LIF)+ -> Output``; ``options``
    are those of :func:`spikeforge.sw.nir_io.import_graph` (``w_bits``, ``timesteps``, ``dt``,
    ``theta``, ``approximate`` and further config fields). A node, parameter or graph shape the
    chip cannot run raises :class:`~spikeforge.sw.nir_io.NirError` naming it with the reason.
    """
    return import_graph(read_graph(path), **options)


def save_import(imported: Imported, toml: str | Path, *, source: str = "") -> tuple[Path, Path]:
    """Write the imported config (``toml``) and its initial weights beside it (``.pt``).

    The weights are a spikeforge checkpoint (mode ``int``) that ``spikeforge train --init``
    and :func:`initial_weights` read; returns both paths."""
    toml = Path(toml)
    toml.parent.mkdir(parents=True, exist_ok=True)
    cfg = imported.config
    header = f"imported from {source}" if source else "imported from NIR"
    toml.write_text(cfg.to_toml(header + "; initial weights: " + toml.with_suffix(".pt").name))
    model = GoldenModel(cfg, imported.master_weights())
    meta = {"epoch": -1, "history": [], "train_seconds": 0.0, "source": source or "nir"}
    meta["import"] = imported.to_dict()
    ckpt = save_checkpoint(toml.with_suffix(".pt"), cfg, "int", model.state_dict(), meta)
    return toml, ckpt


def export_nir(checkpoint: str | Path, path: str | Path, *, dt: float = NIR_DT) -> list[str]:
    """Write an integer checkpoint's network as a NIR file; returns the differences to expect.

    The file holds the forward weights in LSBs and ``theta`` as every threshold (see
    :func:`spikeforge.sw.nir_io.export_graph`); snnTorch reads it with
    ``snntorch.import_nir.import_from_nir``."""
    cfg, blob = load_checkpoint(checkpoint)
    if blob["mode"] != "int":
        raise CheckpointError(
            f"{str(checkpoint)!r} is a {blob['mode']} checkpoint: export an integer (--mode int) "
            "one, whose weights are the chip's"
        )
    weights = [shr_floor(w, cfg.frac_bits) for w in blob["state"]["weights"]]
    graph, notes = export_graph(cfg, weights, dt=dt)
    write_graph(path, graph)
    return notes
