"""Mutation testing (``sim/mutate.py``): the mutants are deterministic, real, one-line and
Verilate; the regression kills a wrong RTL, the new cycle-counter check kills a counter mutant
the regression misses, and the unchanged RTL passes the regression and every new check
(``sim/tb_cycles.py``, ``sim/tb_abort.py``, ``sim/tb_length.py``).

The end-to-end cases build in ``build/rtl/test_mutate/<name>`` and keep the build, so a rerun
with the same Verilog reuses it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

import pytest

from spikeforge.hw.generate import lint
from spikeforge.sim.matrix import core_params
from spikeforge.sim.mutate import (
    AREAS,
    CONFIG,
    MARKER,
    SEEDS,
    Mutant,
    Outcome,
    apply,
    classify,
    generate_synthesis,
    probe,
    run_mutant,
    score,
    select,
    sites,
)

BUILD_ROOT = Path(__file__).resolve().parents[1] / "build" / "rtl" / "test_mutate"


@pytest.fixture(scope="module")
def original(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("original")
    man = generate_synthesis(core_params(CONFIG), out)
    return (out / man["verilog"]).read_text()


@pytest.fixture(scope="module")
def mutants(original) -> list[Mutant]:
    return select(sites(original), 40, seed=1)


def _first(original: str, module_suffix: str, what: str, contains: str = "") -> Mutant:
    """The first site (file order) of a module whose mutation is ``what``."""
    for m in sites(original):
        if m.module.endswith(module_suffix) and m.what == what and contains in m.original:
            return m
    raise AssertionError(f"no {what!r} site in {module_suffix} (with {contains!r})")


def test_selection_is_deterministic_and_spread(original, mutants):
    again = select(sites(original), 40, seed=1)
    assert [m.to_dict() for m in again] == [m.to_dict() for m in mutants]
    other = select(sites(original), 40, seed=2)
    assert [m.key for m in other] != [m.key for m in mutants]
    assert [m.id for m in mutants] == list(range(40))
    assert len({m.key for m in mutants}) == 40
    assert Counter(m.area for m in mutants) == dict.fromkeys(AREAS, 10)
    assert set(Counter(m.kind for m in mutants)) == {"op", "const", "cond"}
    assert min(Counter(m.kind for m in mutants).values()) >= 8
    modules = {m.module for m in mutants}
    assert {".fp", ".bp", ".wg", ".upd", ".host"} <= {"." + n.split(".")[-1] for n in modules}


def test_every_mutant_changes_exactly_its_line(original, mutants):
    lines = original.split("\n")
    for m in mutants:
        mutated = apply(original, m).split("\n")
        changed = [n + 1 for n, (a, b) in enumerate(zip(lines, mutated, strict=True)) if a != b]
        assert changed == [m.line], m
        assert "rst" not in m.original.replace("first", ""), m  # reset logic is out of scope
    with pytest.raises(ValueError, match="not the mutant's original line"):
        apply(original.replace(mutants[0].original, "  // moved"), mutants[0])


def test_mutants_and_their_probes_verilate(original, mutants, tmp_path):
    # lint is 2-3 s a file: two mutants of each kind and two probes (the campaign builds all)
    picks = [next(m for m in mutants[n:] if m.kind == k) for k in ("op", "const", "cond")
             for n in (0, 20)]  # fmt: skip
    texts = [apply(original, m) for m in picks]
    texts += [probe(original, picks[0]), probe(original, picks[-1])]
    assert all(MARKER in t for t in texts[-2:])
    for n, text in enumerate(texts):
        path = tmp_path / str(n) / "spikeforge_core.v"
        path.parent.mkdir()
        path.write_text(text)
        assert lint(path) == [], picks[min(n, 5)]


def test_score_and_classification():
    m = Mutant(0, "top.inner.bp", "engines", "op", 1, "assign", (1, 1), "a", "b", "x")
    passed = {"valid": True, "passed": True}
    assert classify({"valid": False, "passed": False}, m, None) == "invalid"
    assert classify({"valid": True, "passed": False}, m, None) == "killed"
    assert classify(passed, m, {**passed, "infected": True}) == "survived"
    assert classify(passed, m, {**passed, "infected": False}) == "not covered"
    assert classify(passed, m, {**passed, "killed_by": "cycles", "infected": True}) == "survived"
    outcomes = [Outcome(m, r) for r in ("killed",) * 18 + ("survived", "survived", "invalid")]
    outcomes[-2].new_check = "cycles"
    assert score(outcomes) == {
        "mutants": 21,
        "killed": 18,
        "survived": 2,
        "not covered": 0,
        "equivalent": 0,
        "invalid": 1,
        "score": 0.9,
        "killed_by_new_checks": 1,
        "score_with_new_checks": 0.95,
    }


@pytest.mark.rtl
def test_regression_kills_wrong_rtl_and_passes_the_unchanged_one(original):
    lfsr = _first(original, ".upd", "'^' -> '|'", "lf_wdata")
    cases = {
        # one bit of the LFSR's next state wrong (stochastic rounding; the LFSR is read back)
        "lfsr-xor-to-or": lfsr,
        # FORWARD never clears the forward cycle counters: the regression never reads the
        # counters (a hole the mutation campaign found); the new cycles check kills it
        "counter-never-cleared": _first(original, ".counters", "condition stuck at 0"),
        # a no-op "mutant": its line replaced by itself; must pass all (so this test can fail)
        "noop": dataclasses.replace(lfsr, mutated=lfsr.original, what="no-op"),
    }
    results = {
        name: run_mutant(
            BUILD_ROOT / name,
            original,
            m,
            CONFIG,
            probe_survivor=False,
            keep_build=True,
            stages=("regression", "cycles", "abort", "length"),
        )
        for name, m in cases.items()
    }
    killed = results["lfsr-xor-to-or"]
    assert killed.result == "killed", killed
    assert "first mismatch in" in killed.message and killed.seeds_run <= 3
    hole = results["counter-never-cleared"]
    assert (hole.result, hole.new_check) == ("survived", "cycles"), hole
    assert "cycle counter" in hole.new_message
    noop = results["noop"]
    assert (noop.result, noop.new_check, noop.message) == ("survived", None, ""), noop
    assert noop.seeds_run == 4 * len(SEEDS)  # every seed of the regression and the new checks
