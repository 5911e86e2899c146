"""spikeforge: train spiking neural networks on FPGAs, verified bit-exact.

The Python API (:mod:`spikeforge.api`) is reachable from the package itself, imported on first
use: ``import spikeforge as sf; sf.import_nir("model.nir")``.
"""

__version__ = "0.1.0"

_API = ("export_nir", "import_nir", "initial_weights", "save_import")


def __getattr__(name: str):
    if name in _API:
        from spikeforge import api

        return getattr(api, name)
    raise AttributeError(f"module 'spikeforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
