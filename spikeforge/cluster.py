"""One way to Dask: a running scheduler, or a local cluster of single-thread worker processes.

``spikeforge sweep`` and ``spikeforge regress`` both get their client from :func:`dask_client`:

* ``scheduler`` (``tcp://HOST:PORT``): connect within :data:`SCHEDULER_TIMEOUT` seconds, then
  wait at most :data:`WORKER_TIMEOUT` seconds for its first worker;
* else a :class:`~distributed.LocalCluster` of ``workers`` processes with one thread each (a
  task -- a training, a synthesis, a Verilator build or simulator run -- keeps one CPU busy).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from distributed import Client, LocalCluster

from spikeforge.sw.config import ConfigError

__all__ = ["SCHEDULER_TIMEOUT", "WORKER_TIMEOUT", "check_scheduler", "dask_client"]

SCHEDULER_TIMEOUT = 30
"""Seconds to reach a running scheduler."""
WORKER_TIMEOUT = 120
"""Seconds a running scheduler may take to have its first worker."""
SCHEMES = ("tcp", "tls")


def check_scheduler(address: str) -> str:
    """``address`` if it is a scheduler address ``tcp://HOST:PORT`` (or ``tls://``), else a
    :class:`~spikeforge.sw.config.ConfigError` (a user's error) naming it."""
    try:
        parts = urlsplit(address)
        ok = (
            parts.scheme in SCHEMES
            and bool(parts.hostname)
            and (parts.port or 0) > 0
            and not (parts.path or parts.query or parts.fragment or parts.username)
        )
    except ValueError:  # a port that is no number, or above 65535
        ok = False
    if not ok:
        raise ConfigError(
            f"--scheduler must be a Dask scheduler address like tcp://HOST:8786, not {address!r}"
        )
    return address


@contextmanager
def dask_client(
    workers: int = 2, scheduler: str | None = None, *, allowed_failures: int | None = None
) -> Iterator[Client]:
    """A client of ``scheduler``, else of a new local cluster of ``workers`` single-thread
    processes; closed (the local cluster too) on leaving.

    ``allowed_failures``: how many times the local cluster's scheduler runs a task again after
    the worker running it died, before it fails the task with ``KilledWorker`` (None: Dask's
    ``distributed.scheduler.allowed-failures``, 3). A running scheduler keeps its own setting.
    """
    cluster = None
    if scheduler:
        client = Client(scheduler, timeout=f"{SCHEDULER_TIMEOUT}s")
    else:
        kwargs: dict[str, Any] = {}
        if allowed_failures is not None:
            kwargs["scheduler_kwargs"] = {"allowed_failures": allowed_failures}
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: None means 8787, taken by a second cluster
            silence_logs=logging.ERROR,
            **kwargs,
        )
        client = Client(cluster)
    try:
        if scheduler:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
