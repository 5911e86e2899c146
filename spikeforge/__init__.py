"""spikeforge: train spiking neural networks on FPGAs, verified bit-exact."""

__version__ = "0.1.0"
