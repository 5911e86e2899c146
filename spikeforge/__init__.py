"""spikeforge: train spiking neural networks on FPGAs, verified bit-exact.

The Python API (:mod:`spikeforge.api`) is reachable from the package itself, each name imported
from the module that owns it on first use (importing the package stays light)::

    import spikeforge as sf

    config = sf.load_config("net.toml", timesteps=8)
    sf.train(config, epochs=5)
    sf.generate(config, out="build/core")
"""

__version__ = "0.1.0"

_API = {
    "Config": "spikeforge.loader",
    "load_config": "spikeforge.loader",
    "train": "spikeforge.training",
    "initial_weights": "spikeforge.training",
    "generate": "spikeforge.generation",
    "federate": "spikeforge.federation",
    "Generated": "spikeforge.generation",
    "export_nir": "spikeforge.api",
    "import_nir": "spikeforge.api",
    "save_import": "spikeforge.api",
}
"""Each public name of :mod:`spikeforge.api` and the module it is imported from."""


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'spikeforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
