"""Test order: the files with long tests first.

``make test`` spreads the files over pytest-xdist processes (``--dist loadfile``), handing out
files in collection order. Files holding a test marked ``rtl`` (Verilator), ``pnr``
(place and route) or ``slow`` go first, so the short files fill the gaps at the end instead of
one long file running alone. Within each group the order is pytest's.
"""

from __future__ import annotations

import os

LONG = ("rtl", "pnr", "slow")


def pytest_configure(config) -> None:
    """One torch thread in each pytest-xdist process: the processes share the cores."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(items) -> None:
    long = {item.path for item in items if any(item.get_closest_marker(m) for m in LONG)}
    items.sort(key=lambda item: item.path not in long)  # stable
