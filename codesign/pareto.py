"""Pareto fronts of point records: the points no other point beats in every objective.

A point *dominates* another when it is at least as good in every objective and strictly better
in one. The front of a sweep is the set of finished (``status == "ok"``) points that have a
value for every objective and that no such point dominates. Points equal in every objective do
not dominate each other, so a front keeps all of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

__all__ = ["OBJECTIVES", "dominates", "pareto_front"]

OBJECTIVES: dict[str, str] = {
    "accuracy": "max",
    "luts": "min",
    "train_cycles": "min",
    "energy_nj": "min",
}
"""The sweep's objectives and their directions: ``"max"`` is better high, ``"min"`` low."""


def _check_objectives(objectives: Mapping[str, str]) -> None:
    if not isinstance(objectives, Mapping):
        raise TypeError(f"objectives must be a mapping of name to 'min'/'max', not {objectives!r}")
    if not objectives:
        raise ValueError("objectives must name at least one objective, not {}")
    for key, direction in objectives.items():
        if direction not in ("min", "max"):
            raise ValueError(f"objectives[{key!r}] must be 'min' or 'max', not {direction!r}")


def _value(record: Mapping[str, Any], key: str, name: str) -> float:
    """``record[key]`` as a number; TypeError/ValueError naming ``name`` otherwise."""
    if not isinstance(record, Mapping):
        raise TypeError(f"{name} must be a mapping, not {record!r}")
    if key not in record or record[key] is None:
        raise ValueError(f"{name} has no value for objective {key!r}")
    value = record[key]
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name}[{key!r}] must be a number, not {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name}[{key!r}] must be a number, not NaN")
    return float(value)


def dominates(a: Mapping[str, Any], b: Mapping[str, Any], objectives: Mapping[str, str]) -> bool:
    """Whether point ``a`` dominates point ``b``.

    Parameters
    ----------
    a, b : Mapping
        Points (records) holding a number for every key of ``objectives``.
    objectives : Mapping[str, str]
        Objective name to direction, ``"min"`` or ``"max"`` (see :data:`OBJECTIVES`).

    Returns
    -------
    bool
        ``True`` when ``a`` is at least as good as ``b`` in every objective and strictly
        better in at least one; ``False`` for equal points.

    Raises
    ------
    TypeError
        ``objectives`` is not a mapping, a point is not a mapping, or a value is not a number.
    ValueError
        A direction is neither ``"min"`` nor ``"max"``, or a point lacks an objective (missing,
        ``None`` or NaN).
    """
    _check_objectives(objectives)
    better = False
    for key, direction in objectives.items():
        x, y = _value(a, key, "a"), _value(b, key, "b")
        if direction == "max":
            x, y = -x, -y
        if x > y:
            return False
        better = better or x < y
    return better


def _complete(record: Mapping[str, Any], objectives: Mapping[str, str]) -> bool:
    """Whether ``record`` finished and has a number (not NaN) for every objective."""
    if record.get("status") != "ok":
        return False
    for key in objectives:
        value = record.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
    return True


def pareto_front(
    records: Sequence[Mapping[str, Any]], objectives: Mapping[str, str] = OBJECTIVES
) -> list[str]:
    """The ids of the non-dominated points.

    Parameters
    ----------
    records : Sequence[Mapping]
        Point records, each with an ``"id"`` and a ``"status"``. Only records with status
        ``"ok"`` and a value (not ``None`` or NaN) for every objective take part; the others are
        never on the front and never dominate.
    objectives : Mapping[str, str]
        Objective name to direction, ``"min"`` or ``"max"`` (default :data:`OBJECTIVES`).

    Returns
    -------
    list[str]
        Ids of the records no other taking part dominates, in input order. Records equal in
        every objective are all kept.

    Raises
    ------
    TypeError
        ``records`` is not a sequence of mappings, or an objective value is not a number.
    ValueError
        A direction is neither ``"min"`` nor ``"max"``, or a record has no ``"id"``.
    """
    _check_objectives(objectives)
    if isinstance(records, str | bytes | Mapping) or not isinstance(records, Sequence):
        raise TypeError(f"records must be a sequence of mappings, not {records!r}")
    for i, r in enumerate(records):
        if not isinstance(r, Mapping):
            raise TypeError(f"records[{i}] must be a mapping, not {r!r}")
        if "id" not in r:
            raise ValueError(f"records[{i}] has no 'id': {r!r}")
    ok = [r for r in records if _complete(r, objectives)]
    return [r["id"] for r in ok if not any(dominates(o, r, objectives) for o in ok)]
