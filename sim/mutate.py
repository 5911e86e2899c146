"""Mutation testing of the generated Verilog against the Verilator regression (issue 16).

The mutants are source-level edits of one matrix config's generated Verilog as synthesis sees it
(:func:`generate_synthesis`: without the simulation-only read-during-write instrumentation), each
one line of the design's functional logic, never the testbench:

* ``op`` -- a binary operator of an ``assign`` replaced (``+``/``-``, ``==``/``!=``,
  ``<``/``<=``, ``>``/``>=``, ``&``/``|``, ``^`` -> ``|``, ``*`` -> ``+``, ``<<``/``>>``) or a
  ``!``/``~`` dropped;
* ``const`` -- a constant of an ``assign`` or of a combinational assignment: ``N'hX`` -> ``X+1``
  modulo ``2**N`` (a loop bound, a saturation limit, an opcode, a state number);
* ``cond`` -- an ``if`` condition negated or stuck at 0 or 1, or a multiplexer's arms swapped.

Reset logic (``if (rst)`` and what it assigns), declarations, initial values and attributes are
left alone: the scope is what the core computes after reset. :func:`select` spreads the mutants
over the areas (engines ``fp``/``bp``/``wg``, ``update``, ``host``, ``memories`` = the inner
module with the memories and their ports, plus the AXI wrapper) and, in each module, over the
three kinds, deterministically from a seed.

Each mutant is Verilated on its own (one that does not Verilate is *invalid*) and run through the
config's CI regression (:data:`SEEDS` x 2 steps of ``tb_core``, bit-exact against the golden
model, the first failing seed ends it; a wall-clock limit backs the testbench's simulated-time
limits). A failure *kills* it. A mutant that passes is built again with its *infection probe*:
the original expression (or ``always @*`` block, renamed) beside the mutated one and a
``$display`` the first time their values differ at a clock edge after reset. Never infected in
the regression = *not covered* (it never reaches a state where the mutation changes anything);
infected = *survived*. The probe build also runs the :data:`EXTRA_STAGES` (new checks and the
CI fuzzer on this config); the one that fails is the survivor's ``new_check``. Survivors that are
equivalent (the change can never reach an output) are listed, with the reason, in
:data:`EQUIVALENT`; the score is killed / (mutants - invalid - equivalent), with and without the
new checks.

``python -m spikeforge.sim.mutate --mutants 40 --seed 1 --out build/mutate --json`` runs a
campaign and writes ``results.json`` and ``results.md``; ``--recheck`` probes its unresolved
survivors again, ``--rescore`` only rewrites the tables (after :data:`EQUIVALENT` changed).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import inspect
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spikeforge.toolchain import run_tool

__all__ = [
    "CONFIG",
    "EQUIVALENT",
    "SEEDS",
    "Mutant",
    "Outcome",
    "apply",
    "campaign",
    "evaluate",
    "probe",
    "score",
    "select",
    "sites",
]

CONFIG = "w4-p1-zero-triangle"
"""The default matrix config whose Verilog is mutated: one of the CI set, small enough that a
build and its regression take about 25 s."""
SEEDS = (0, 1, 2)
"""The seeds of the CI regression (``tests/test_rtl.py``), 2 training steps each."""
STEPS = 2
TIMEOUT_S = 300.0
"""Wall-clock limit of one mutant's build and runs (the testbench's own limits come first)."""
MARKER = "SPIKEFORGE_MUTANT_INFECTED"
STAGES = {
    "regression": "spikeforge.sim.tb_core",
    "cycles": "spikeforge.sim.tb_cycles",
    "fuzz": "spikeforge.sim.tb_fuzz",
    "abort": "spikeforge.sim.tb_abort",
    "length": "spikeforge.sim.tb_length",
}
"""The testbench of each stage: ``regression`` is the CI regression (every mutant); the others
(:data:`EXTRA_STAGES`) run on the survivors: ``cycles`` (the cycle counters,
``sim/tb_cycles.py``, new), ``fuzz`` (the CI's host-port fuzzer, ``sim/tb_fuzz.py``, on this
config: :data:`FUZZ_PACKETS` packets with ABORTs at random moments), ``abort`` (an ABORT
writes nothing, ``sim/tb_abort.py``, new) and ``length`` (a WRITE one row too long is refused,
``sim/tb_length.py``, new)."""
FUZZ_PACKETS = 400
EXTRA_STAGES = ("cycles", "fuzz", "abort", "length")

_DEAD_LIVE = (
    "dead logic: the read-enable strobe only feeds the memory's `*_live` register, which nothing "
    "reads in the synthesis Verilog (it exists for the simulation-only read-during-write "
    "checks; Yosys removes it)"
)
_ONE_LANE = (
    "equivalent for lanes = 1: the walker's lane index (hw/host/walker.py, op_/ip_) is 0 after "
    "reset and setup and stays 0 (`op_ == P - 1` resets it), so the operand is always 0"
)
EQUIVALENT: dict[str, str] = {
    # -- w4-p1-zero-triangle, seed 1 ------------------------------------------------------------
    "23f854f51a73": _DEAD_LIVE + " (ren_eprev -> eprev_live)",
    "48b781bf168a": _DEAD_LIVE + " (bp.err_ren -> errors_live)",
    "ff04fd942237": _ONE_LANE + ": 1 << wlane == 1 >> wlane == 1 (write-lane mask)",
    "875fc645b49a": _ONE_LANE + ": 1 << wlane == 1 >> wlane == 1 (write-lane mask)",
    "e5168df221e7": _ONE_LANE + ": hlane_d3 * 0x20 == hlane_d3 * 0x21 == 0 (response lane offset)",
    "82f77c316a95": (
        "the mutated bit never reaches the memory: the 6-bit shared read address of the 8-entry "
        "event_heads memory is cut to its low 3 bits (`$97 = $38[2:0]`), and the mutation sets "
        "bit 4 of the padding {2'h0, ...}"
    ),
    "0bd17aba9b5e": (
        "dead logic: upd.$433 (`fsm_state == 3'h7`, the FSM's drain-state test Amaranth emits) "
        "has no reader in the module"
    ),
    "f2f13f73470e": (
        "equivalent for groups >= 2 (here 4): the update engine's drain counter is only read in "
        "state 7, entered from state 6 with g == 3; the mutant loads it with 7 in state 6 of "
        "groups 0-2 instead of group 3, and nothing changes it in between, so it enters state 7 "
        "with 7 as the original does"
    ),
    "74df66447787": (
        "the mutated bit never reaches the memory: the 6-bit shared read address of the 24-entry "
        "grads memory is cut to its low 5 bits (`$91 = $20[4:0]`), and the mutation sets bit 5, "
        "the padding of {1'h0, gr_raddr}"
    ),
    "76e6d16ccf1f": (
        "an abort value overwritten before use: upd.lf_wdata (the update engine's LFSR state) is "
        "loaded from the LFSR memory in state 4 of every UPDATE before it is advanced (state 5) "
        "or written back (state 6), so its value after ABORT never matters (the fuzz stage "
        "aborts UPDATEs and passes)"
    ),
}
"""Survivors proved equivalent, by :attr:`Mutant.key` (of the campaign's config and seed): why
no input sequence can tell them from the original."""

_OPS = {
    "+": "-",
    "-": "+",
    "*": "+",
    "==": "!=",
    "!=": "==",
    "<": "<=",
    "<=": "<",
    ">": ">=",
    ">=": ">",
    "&": "|",
    "|": "&",
    "^": "|",
    "<<": ">>",
    ">>": "<<",
    "&&": "||",
    "||": "&&",
}
_OP_RE = re.compile(r" (==|!=|<=|>=|<<|>>|&&|\|\||[-+*<>&|^]) ")
_UNARY_RE = re.compile(r"(?:(?<== )|(?<=\())([!~]) ")
_CONST_RE = re.compile(r"\b(\d+)'(h|d)([0-9a-fA-F]+)\b")
_IDENT = r"(?:\\\S+ |[A-Za-z_][\w$]*)"
_DECL_RE = re.compile(rf"^\s*(?:input|output|wire|reg)\s+(?:\[(\d+):(\d+)\]\s+)?({_IDENT})")
_TARGET_RE = re.compile(rf"^\s*({_IDENT})\s*(?:\[[^\]]*\]\s*)?=(?!=)")
_IF_RE = re.compile(r"^(\s*if \()(.*)(\)( begin)?)$")
_KINDS = ("op", "const", "cond")
AREAS = ("engines", "update", "host", "memories")


def area_of(module: str) -> str:
    """``engines`` (fp, bp, wg), ``update``, ``host`` (all of ``host.*``) or ``memories`` (the
    inner module: memories and their ports; and the AXI wrapper)."""
    path = module.lstrip("\\").split(".")[1:]
    if path[1:2] and path[1] in ("fp", "bp", "wg"):
        return "engines"
    if path[1:2] == ["upd"]:
        return "update"
    if path[1:2] == ["host"]:
        return "host"
    return "memories"


@dataclass(frozen=True)
class Mutant:
    """One edit of one line (``line`` is 1-based) of the generated Verilog."""

    id: int
    module: str
    area: str
    kind: str
    line: int
    context: str  # "assign", "comb" (in an always @* block) or "seq" (always @(posedge clk))
    block: tuple[int, int]  # the lines of the statement or always block (1-based, inclusive)
    original: str
    mutated: str
    what: str

    @property
    def key(self) -> str:
        """Identifies the mutant in any campaign of the same Verilog: module, what and the
        original line."""
        digest = hashlib.sha256(f"{self.module}|{self.original}|{self.what}".encode()).hexdigest()
        return digest[:12]

    @property
    def where(self) -> str:
        return f"{self.module.lstrip(chr(92)).split(' ')[0]}:{self.line}"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "key": self.key, "where": self.where}


def _modules(lines: list[str]) -> list[tuple[str, int, int]]:
    """(name, first, last) of every module (0-based line indices)."""
    out, name, first = [], None, 0
    for n, text in enumerate(lines):
        if text.startswith("module "):
            name, first = text.split()[1].split("(")[0], n
        elif text.startswith("endmodule") and name is not None:
            out.append((name, first, n))
            name = None
    return out


def _blocks(lines: list[str], first: int, last: int):
    """Yield (context, start, end) of every assign and always block of a module (0-based)."""
    n = first
    while n <= last:
        text = lines[n]
        if text.startswith("  assign "):
            yield "assign", n, n
        elif text.startswith("  always "):
            context = "comb" if text.startswith("  always @*") else "seq"
            if text.rstrip().endswith("begin"):
                end = n + 1
                while lines[end] != "  end":
                    end += 1
            else:
                end = n + 1
            yield context, n, end
            n = end
        n += 1


def _bump(match: re.Match) -> str:
    width, base, digits = int(match[1]), match[2], match[3]
    value = (int(digits, 16 if base == "h" else 10) + 1) % (1 << width)
    text = f"{value:0{len(digits)}x}" if base == "h" else str(value)
    return f"{width}'{base}{text}"


def _rhs_mutations(prefix: str, rhs: str, suffix: str) -> list[tuple[str, str, str]]:
    """(kind, mutated line, what) of one right-hand side."""
    out = []
    for m in _OP_RE.finditer(rhs):
        before = rhs[: m.start()].rstrip()
        if not before or before[-1] in "=(?:,{!~":
            continue  # a unary operator, not a binary one
        op = m[1]
        new = rhs[: m.start()] + f" {_OPS[op]} " + rhs[m.end() :]
        out.append(("op", prefix + new + suffix, f"'{op}' -> '{_OPS[op]}'"))
    for m in _UNARY_RE.finditer(" = " + rhs):
        start = m.start() - 3
        new = rhs[:start] + rhs[start + 2 :]
        out.append(("op", prefix + new + suffix, f"drop '{m[1]}'"))
    for m in _CONST_RE.finditer(rhs):
        new = rhs[: m.start()] + _bump(m) + rhs[m.end() :]
        out.append(("const", prefix + new + suffix, f"{m[0]} -> {_bump(m)}"))
    mux = re.fullmatch(rf"({_IDENT}) \? (.*) : (.*)", rhs)
    if mux and rhs.count(" ? ") == 1 and rhs.count(" : ") == 1:
        new = f"{mux[1]} ? {mux[3]} : {mux[2]}"
        out.append(("cond", prefix + new + suffix, "mux arms swapped"))
    return out


def _if_mutations(text: str) -> list[tuple[str, str, str]]:
    m = _IF_RE.match(text)
    cond = m[2]
    return [
        ("cond", f"{m[1]}!({cond}){m[3]}", "condition negated"),
        ("cond", f"{m[1]}1'h0{m[3]}", "condition stuck at 0"),
        ("cond", f"{m[1]}1'h1{m[3]}", "condition stuck at 1"),
    ]


def sites(verilog: str) -> list[Mutant]:
    """Every candidate mutant of the Verilog (``id`` -1), in file order."""
    lines = verilog.splitlines()
    out: list[Mutant] = []
    for module, first, last in _modules(lines):
        area = area_of(module)
        for context, start, end in _blocks(lines, first, last):
            reset_indent = None
            for n in range(start, end + 1):
                text = lines[n]
                indent = len(text) - len(text.lstrip())
                if reset_indent is not None:
                    if indent == reset_indent and text.strip().startswith("end"):
                        reset_indent = None
                    continue
                found: list[tuple[str, str, str]] = []
                if context == "assign":
                    m = re.fullmatch(r"(  assign [^=]*= )(.*)(;)", text)
                    found = _rhs_mutations(m[1], m[2], m[3])
                elif _IF_RE.match(text):
                    cond = _IF_RE.match(text)[2]
                    if cond == "rst":
                        reset_indent = indent if text.endswith("begin") else None
                        continue
                    if "dump_module" in cond:
                        continue
                    found = _if_mutations(text)
                elif context == "comb" and _TARGET_RE.match(text):
                    lhs, rhs = text.split(" = ", 1)
                    found = [
                        f for f in _rhs_mutations(lhs + " = ", rhs[:-1], ";") if f[0] == "const"
                    ]
                block = (start + 1, end + 1)
                out.extend(
                    Mutant(-1, module, area, kind, n + 1, context, block, text, mutated, what)
                    for kind, mutated, what in found
                )
    return out


def select(candidates: Sequence[Mutant], count: int, seed: int) -> list[Mutant]:
    """``count`` mutants spread evenly: round-robin over :data:`AREAS`, in each area over its
    modules, in each module over the kinds; the site of each pick is drawn with ``seed``."""
    rng = random.Random(seed)
    pools: dict[str, dict[str, dict[str, list[Mutant]]]] = {}
    for m in candidates:
        pools.setdefault(m.area, {}).setdefault(m.module, {}).setdefault(m.kind, []).append(m)
    turn = dict.fromkeys(pools, 0)
    kind_turn: dict[str, int] = {}
    out: list[Mutant] = []
    used_lines: set[int] = set()
    while len(out) < count and any(pools.values()):
        for area in AREAS:
            modules = pools.get(area)
            if not modules or len(out) >= count:
                continue
            names = sorted(modules)
            module = names[turn[area] % len(names)]
            turn[area] += 1
            kinds = [k for k in _KINDS if modules[module].get(k)]
            kind = kinds[(kind_turn.get(module, 0) + names.index(module)) % len(kinds)]
            kind_turn[module] = kind_turn.get(module, 0) + 1
            pool = modules[module][kind]
            fresh = [m for m in pool if m.line not in used_lines] or pool
            # one draw per distinct statement text first, so that the many identical lines
            # (``if (abort) begin`` in every register's block) count as one
            groups = sorted({_text(m) for m in fresh})
            group = groups[rng.randrange(len(groups))]
            same = [m for m in fresh if _text(m) == group]
            pick = same[rng.randrange(len(same))]
            pool.remove(pick)
            used_lines.add(pick.line)
            if not pool:
                del modules[module][kind]
            if not modules[module]:
                del modules[module]
            out.append(dataclasses.replace(pick, id=len(out)))
    return out


def _text(m: Mutant) -> str:
    return f"{m.original.strip()} {m.what}"


def apply(verilog: str, mutant: Mutant) -> str:
    """The Verilog with the mutant's line replaced (checked to be the original line)."""
    lines = verilog.split("\n")
    if lines[mutant.line - 1] != mutant.original:
        raise ValueError(f"line {mutant.line} is not the mutant's original line")
    lines[mutant.line - 1] = mutant.mutated
    return "\n".join(lines)


def _widths(lines: list[str], first: int, last: int) -> dict[str, int]:
    out = {}
    for text in lines[first : last + 1]:
        m = _DECL_RE.match(text)
        if m:
            out[m[3].strip()] = int(m[1]) - int(m[2]) + 1 if m[1] else 1
    return out


def _lhs_width(lhs: str, widths: dict[str, int]) -> tuple[str, int]:
    """The target of ``lhs`` (``x`` or ``x[a:b]`` or ``x[a]``) as an expression, and its width."""
    m = re.fullmatch(r"(\\\S+|[A-Za-z_][\w$]*)\s*(?:\[(\d+)(?::(\d+))?\])?", lhs.strip())
    name = m[1] + " " if m[1].startswith("\\") else m[1]
    if m[2] is None:
        return name, widths[m[1]]
    lo = int(m[3]) if m[3] is not None else int(m[2])
    return f"{name}[{m[2]}:{lo}]", int(m[2]) - lo + 1


def _rename(text: str, name: str, new: str) -> str:
    if name.startswith("\\"):
        return text.replace(name + " ", new + " ")
    return re.sub(rf"(?<![\w$\\]){re.escape(name)}(?![\w$])", new, text)


def probe(verilog: str, mutant: Mutant) -> str:
    """The mutant plus its infection probe: the original logic beside it under new names and a
    ``$display`` of :data:`MARKER` the first time (after reset) the two differ at a clock edge."""
    lines = apply(verilog, mutant).split("\n")
    module = next(m for m in _modules(lines) if m[1] < mutant.line <= m[2])
    widths = _widths(lines, module[1], module[2])
    start, end = mutant.block
    added: list[str] = []
    if mutant.context == "assign":
        lhs, rhs = mutant.original.removeprefix("  assign ").rstrip(";").split(" = ", 1)
        target, width = _lhs_width(lhs, widths)
        added.append(f"  wire [{width - 1}:0] mutant_orig = {rhs};")
        differs = f"({target} != mutant_orig)"
    elif mutant.context == "comb":
        block = [*lines[start - 1 : end]]
        block[mutant.line - start] = mutant.original
        targets = sorted({_TARGET_RE.match(t)[1].strip() for t in block if _TARGET_RE.match(t)})
        checks = []
        for k, name in enumerate(targets):
            shadow = f"mutant_orig{k}"
            block = [_rename(t, name, shadow) for t in block]
            added.append(f"  reg [{widths[name] - 1}:0] {shadow};")
            checks.append(f"({name} {'' if name.startswith(chr(92)) else ' '}!= {shadow})")
        added.extend(block)
        differs = "(" + " || ".join(checks) + ")"
    else:  # an if at the top of a clocked block (a memory's write enable)
        orig = _IF_RE.match(mutant.original)[2]
        new = _IF_RE.match(mutant.mutated)[2]
        differs = f"((|({orig})) != (|({new})))"
    live = "!rst && " if "rst" in widths else ""
    added += [
        "  reg mutant_seen = 1'h0;",
        "  always @(posedge clk)",
        f"    if ({live}!mutant_seen && {differs}) begin",
        "      mutant_seen <= 1'h1;",
        f'      $display("{MARKER} at %0t", $time);',
        "    end",
    ]
    return "\n".join([*lines[: module[2]], *added, *lines[module[2] :]])


def generate_synthesis(params, out: Path) -> dict[str, Any]:
    """``generate`` the core's Verilog as synthesis sees it: without the simulation-only
    read-during-write checks (assertions, ``rw_checked`` counters) where the generator has them
    -- the mutants are of the hardware, not of its instrumentation."""
    from spikeforge.hw.generate import generate

    if "checks" in inspect.signature(generate).parameters:
        return generate(params, out, checks=False)
    return generate(params, out)


# -- running ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """The result of one mutant: ``killed``, ``survived``, ``not covered``, ``invalid`` or
    ``equivalent`` (a survivor listed in :data:`EQUIVALENT`)."""

    mutant: Mutant | None
    result: str
    message: str = ""
    seeds_run: int = 0
    seconds: float = 0.0
    infected: bool | None = None
    new_check: str | None = None  # the extra stage that kills a survivor (cycles, fuzz)
    new_message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            **(self.mutant.to_dict() if self.mutant else {"id": None, "where": "(original)"}),
            "result": self.result,
            "message": self.message,
            "seeds_run": self.seeds_run,
            "seconds": round(self.seconds, 1),
            "infected": self.infected,
            "new_check": self.new_check,
            "new_message": self.new_message,
            "equivalent_because": EQUIVALENT.get(self.mutant.key) if self.mutant else None,
        }


def evaluate(
    folder: Path,
    verilog: str,
    config: str,
    *,
    seeds: Sequence[int] = SEEDS,
    steps: int = STEPS,
    keep_build: bool = False,
    stages: Sequence[str] = ("regression",),
) -> dict[str, Any]:
    """Verilate ``verilog`` (config ``config``'s core) in ``folder`` and run the testbench of
    each of ``stages`` (:data:`STAGES`; ``regression``: the CI regression's ``tb_core``) for
    each seed until one fails; in this process. Returns ``{"valid", "passed", "message",
    "seeds_run", "killed_by", "infected"}`` (``killed_by``: the failing stage; ``infected``:
    the probe's marker was printed)."""
    from spikeforge.sim.matrix import core_params
    from spikeforge.sim.rtl_runner import build, run

    params = core_params(config)
    folder = Path(folder).resolve()

    def emit(out: Path) -> dict[str, Any]:
        man = generate_synthesis(params, out)
        (out / man["verilog"]).write_text(verilog)
        return man

    try:
        b = build(folder, top=params.name, emit=emit, config_hash_key="core_hash")
    except (Exception, SystemExit) as exc:
        log = folder / "build.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
        why = next((t for t in tail if "%Error" in t), None) or f"{type(exc).__name__}: {exc}"
        return {"valid": False, "passed": False, "message": why[:300], "seeds_run": 0}
    out: dict[str, Any] = {"valid": True, "passed": True, "message": "", "seeds_run": 0}
    out["killed_by"] = None
    infected: set[str] = set()
    runs = [(stage, seed) for stage in stages for seed in (seeds[:1] if stage == "fuzz" else seeds)]
    for stage, seed in runs:
        if not out["passed"]:
            break
        testbench = STAGES[stage]
        case = {
            "core": params.to_dict(),
            "seed": seed,
            "steps": steps,
            "density": 0.5,
            "stall": 0.3,
            "corrupt": False,
        }
        if stage == "fuzz":
            from spikeforge.sim.fuzz import FuzzConfig

            cfg = FuzzConfig(FUZZ_PACKETS, seed=seed + 1)
            case = {"cores": [case["core"]], "fuzz": dataclasses.asdict(cfg),
                    "packets": cfg.packets, "stall": 0.3}  # fmt: skip
        where = folder / f"{stage}-seed-{seed}"
        r = run(b, where, case, testbench=testbench, waves_on_failure=False)
        out["seeds_run"] += 1
        log = r.folder / "test.log"
        if log.exists() and MARKER in log.read_text(errors="replace"):
            infected.add(stage)
        if not r.passed:
            out.update(passed=False, killed_by=stage, message=f"seed {seed}: {r.message}"[:300])
    out["infected"] = "regression" in infected
    out["infected_stages"] = sorted(infected)
    if not keep_build:
        shutil.rmtree(b.sim_build, ignore_errors=True)
    return out


def _evaluate_in_child(
    folder: Path, verilog: str, config: str, timeout: float, **kw: Any
) -> dict[str, Any]:
    """:func:`evaluate` in a child process of its own session, killed after ``timeout`` s."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mutant.v").write_text(verilog)
    job = {"config": config, **kw}
    (folder / "job.json").write_text(json.dumps(job))
    (folder / "outcome.json").unlink(missing_ok=True)
    run = run_tool(
        [sys.executable, "-m", "spikeforge.sim.mutate", "--evaluate", str(folder)],
        timeout=timeout,
        log=folder / "child.log",
    )
    if run.timed_out:
        return {
            "valid": True,
            "passed": False,
            "timeout": True,
            "seeds_run": 0,
            "message": f"wall-clock timeout after {timeout:.0f} s",
        }
    result = folder / "outcome.json"
    if not result.exists():
        return {
            "valid": True,
            "passed": False,
            "seeds_run": 0,
            "message": f"evaluation process exited {run.returncode}",
        }
    return json.loads(result.read_text())


def _compile_fast() -> None:
    """Compile the Verilated C++ at ``-O0`` (``OPT_FAST``/``OPT_GLOBAL``, make overrides beside
    the runner's own in ``MAKEFLAGS``): about half the build time of a mutant, whose runs are
    a few thousand cycles; the simulated behaviour is the same. Only in the evaluation child."""
    from spikeforge.sim import rtl_runner

    environment = rtl_runner._environment

    def fast() -> None:
        environment()
        os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} OPT_FAST=-O0 OPT_GLOBAL=-O0"

    rtl_runner._environment = fast


def _child_main(folder: Path) -> int:
    _compile_fast()
    job = json.loads((folder / "job.json").read_text())
    verilog = (folder / "mutant.v").read_text()
    config = job.pop("config")
    job["seeds"] = tuple(job.get("seeds", SEEDS))
    job["stages"] = tuple(job.get("stages", ("regression",)))
    result = evaluate(folder, verilog, config, **job)
    (folder / "outcome.json").write_text(json.dumps(result, indent=2))
    return 0


def _killed_by(run: dict[str, Any]) -> str | None:
    """The stage that failed (an outcome without the field, or a time-out: the regression)."""
    if run.get("passed", False):
        return None
    return run.get("killed_by") or "regression"


def classify(run: dict[str, Any], mutant: Mutant | None, probed: dict[str, Any] | None) -> str:
    """``invalid``, ``killed`` (by the regression), ``equivalent`` (listed), or -- with the
    infection probe's run -- ``survived`` (infected) or ``not covered``."""
    if not run["valid"]:
        return "invalid"
    if _killed_by(run) == "regression":
        return "killed"
    if mutant is not None and mutant.key in EQUIVALENT:
        return "equivalent"
    if probed is not None and probed.get("valid") and _killed_by(probed) != "regression":
        return "survived" if probed["infected"] else "not covered"
    return "survived"


def _resumed(folder: Path, verilog: str, kw: dict[str, Any]) -> dict[str, Any] | None:
    """The regression outcome stored in ``folder`` by an earlier run of the same Verilog, seeds
    and steps (``--resume``), else None."""
    try:
        job = json.loads((folder / "job.json").read_text())
        same = (folder / "mutant.v").read_text() == verilog
        result = json.loads((folder / "outcome.json").read_text())
    except (OSError, ValueError):
        return None
    wanted = (kw["seeds"], kw["steps"], ["regression"])
    if (
        not same
        or (job.get("seeds"), job.get("steps"), job.get("stages", ["regression"])) != wanted
    ):
        return None
    return result


def run_mutant(
    folder: Path,
    original: str,
    mutant: Mutant | None,
    config: str,
    *,
    timeout: float = TIMEOUT_S,
    probe_survivor: bool = True,
    seeds: Sequence[int] = SEEDS,
    steps: int = STEPS,
    keep_build: bool = False,
    resume: bool = False,
    stages: Sequence[str] = ("regression",),
) -> Outcome:
    """Build and run one mutant (``None``: the original) and classify it; ``probe_survivor``
    builds a survivor again with its infection probe; ``keep_build`` keeps the simulator (a
    rerun of the same Verilog in ``folder`` reuses it)."""
    t0 = time.perf_counter()
    verilog = original if mutant is None else apply(original, mutant)
    kw = {"seeds": list(seeds), "steps": steps, "keep_build": keep_build}
    result = _resumed(folder, verilog, kw) if resume else None
    if result is None:
        result = _evaluate_in_child(folder, verilog, config, timeout, **kw, stages=list(stages))
    probed = None
    if mutant is not None and classify(result, None, None) == "survived" and probe_survivor:
        probed = _evaluate_in_child(
            folder / "probe", probe(original, mutant), config, timeout, **kw,
            stages=["regression", *EXTRA_STAGES],
        )  # fmt: skip
    outcome = Outcome(
        mutant,
        classify(result, mutant, probed),
        message=result.get("message", "") if _killed_by(result) == "regression" else "",
        seeds_run=result.get("seeds_run", 0),
        seconds=time.perf_counter() - t0,
        infected=None if probed is None else bool(probed.get("infected")),
    )
    for r in (result, probed or {}):
        if _killed_by(r) in EXTRA_STAGES:
            outcome.new_check, outcome.new_message = r["killed_by"], r.get("message", "")
    if probed is not None and _killed_by(probed) == "regression":
        outcome.message = f"the probe build failed the regression: {probed.get('message', '')}"
    return outcome


def score(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Counts per result and the score: killed / (mutants - invalid - equivalent)."""
    counts = dict.fromkeys(("killed", "survived", "not covered", "equivalent", "invalid"), 0)
    for o in outcomes:
        counts[o.result] += 1
    scored = sum(counts.values()) - counts["invalid"] - counts["equivalent"]
    extra = sum(
        1 for o in outcomes if o.result in ("survived", "not covered") and o.new_check is not None
    )
    return {
        "mutants": sum(counts.values()),
        **counts,
        "score": round(counts["killed"] / scored, 4) if scored else None,
        "killed_by_new_checks": extra,
        "score_with_new_checks": round((counts["killed"] + extra) / scored, 4) if scored else None,
    }


def _row(o: Outcome) -> list[str]:
    m = o.mutant
    return [
        str(m.id),
        m.area,
        m.where,
        m.kind,
        m.what,
        o.result,
        o.new_check or "",
        f"{o.seconds:.0f}",
    ]


def table(outcomes: Sequence[Outcome]) -> str:
    """The plain-text table: id, area, where, kind, mutation, result, new check, seconds."""
    head = ["id", "area", "where", "kind", "mutation", "result", "new check", "s"]
    rows = [_row(o) for o in outcomes]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [head, *rows]
    )


def summary_line(s: dict[str, Any]) -> str:
    if s["score"] is None:
        return f"{s['mutants']} mutants, none scored"
    return (
        f"{s['mutants']} mutants: killed {s['killed']}, survived {s['survived']}, not covered "
        f"{s['not covered']}, equivalent {s['equivalent']}, invalid {s['invalid']}; score "
        f"{s['score']:.1%} of the valid non-equivalent mutants by the CI regression, "
        f"{s['score_with_new_checks']:.1%} with the new checks "
        f"({s['killed_by_new_checks']} more killed)"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(outcomes: Sequence[Outcome], results: dict[str, Any]) -> str:
    """The mutation table in Markdown, survivors explained."""
    out = [
        f"# Mutation table: `{results['config']}` (seed {results['seed']})",
        "",
        summary_line(results["summary"]) + f"; {results['seconds']:.0f} s.",
        "",
        "| id | area | where | kind | original | mutated | result | new check | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        m = o.mutant
        note = EQUIVALENT.get(m.key) or o.new_message or o.message
        cells = [
            str(m.id),
            m.area,
            f"`{m.where}`",
            m.kind,
            f"`{m.original.strip()}`",
            f"`{m.mutated.strip()}`",
            o.result,
            o.new_check or "",
            note[:200],
        ]
        out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out) + "\n"


def _write(out: Path, results: dict[str, Any], outcomes: Sequence[Outcome]) -> None:
    results["summary"] = score(outcomes)
    results["mutants"] = [o.to_dict() for o in outcomes]
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(outcomes, results))


def campaign(
    out: Path,
    *,
    config: str = CONFIG,
    count: int = 40,
    seed: int = 1,
    timeout: float = TIMEOUT_S,
    resume: bool = False,
    tick: Callable[[Outcome], object] = lambda o: None,
) -> dict[str, Any]:
    """Generate ``config``'s Verilog, run the original (it must pass), then ``count`` mutants;
    write ``results.json`` and ``results.md`` in ``out`` and return the results. ``resume``
    reuses the regression outcomes an interrupted campaign of the same Verilog left in ``out``
    (survivors are probed again)."""
    from spikeforge.sim.matrix import core_params

    out = Path(out).resolve()
    t0 = time.perf_counter()
    params = core_params(config)
    man = generate_synthesis(params, out / "original")
    original = (out / "original" / man["verilog"]).read_text()
    mutants = select(sites(original), count, seed)
    (out / "mutants.json").write_text(json.dumps([m.to_dict() for m in mutants], indent=2))
    base = run_mutant(out / "original", original, None, config, timeout=timeout, resume=resume)
    if base.result != "survived":
        raise RuntimeError(f"the original Verilog fails its regression: {base.message}")
    outcomes = []
    for m in mutants:
        o = run_mutant(out / f"m{m.id:03d}", original, m, config, timeout=timeout, resume=resume)
        outcomes.append(o)
        tick(o)
    results = {
        "config": config,
        "seed": seed,
        "seeds": list(SEEDS),
        "steps": STEPS,
        "extra_stages": list(EXTRA_STAGES),
        "verilog_sha256": hashlib.sha256(original.encode()).hexdigest(),
        "candidate_sites": len(sites(original)),
        "original_seconds": round(base.seconds, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    _write(out, results, outcomes)
    return results


def recheck(
    out: Path, *, rerun: bool, only: Sequence[int] = (), timeout: float = TIMEOUT_S
) -> dict[str, Any]:
    """Re-read ``out/results.json``: apply :data:`EQUIVALENT` and, with ``rerun``, probe the
    unresolved survivors again (``only``: these ids) with the :data:`EXTRA_STAGES` of now
    (their regression outcome is reused); rewrite the results."""
    out = Path(out).resolve()
    results = json.loads((out / "results.json").read_text())
    original = (out / "original" / "spikeforge_core.v").read_text()
    if hashlib.sha256(original.encode()).hexdigest() != results["verilog_sha256"]:
        raise RuntimeError("the campaign's original Verilog changed")
    outcomes = [_outcome_from(d) for d in results["mutants"]]
    t0 = time.perf_counter()
    for n, o in enumerate(outcomes):
        if o.result in ("killed", "invalid"):
            continue
        unresolved = o.new_check is None and o.mutant.key not in EQUIVALENT
        if rerun and (o.mutant.id in only if only else unresolved):
            again = run_mutant(out / f"m{o.mutant.id:03d}", original, o.mutant, results["config"],
                               timeout=timeout, resume=True)  # fmt: skip
            again.seconds += o.seconds
            outcomes[n] = again
        else:
            o.result = "equivalent" if o.mutant.key in EQUIVALENT else (
                "survived" if o.infected or o.infected is None else "not covered")  # fmt: skip
    if rerun:
        results["recheck_seconds"] = round(time.perf_counter() - t0, 1)
        results["extra_stages"] = list(EXTRA_STAGES)
    _write(out, results, outcomes)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spikeforge.sim.mutate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--mutants", type=int, default=40, help="how many mutants (default 40)")
    parser.add_argument("--seed", type=int, default=1, help="picks the mutants (default 1)")
    parser.add_argument("--config", default=CONFIG, help=f"matrix config (default {CONFIG})")
    parser.add_argument("--out", type=Path, default=Path("build/mutate"))
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="s per mutant")
    parser.add_argument("--list", action="store_true", help="only print the selected mutants")
    parser.add_argument(
        "--recheck", action="store_true", help="run the survivors of --out's campaign again"
    )
    parser.add_argument(
        "--only", default="", help="with --recheck: these mutant ids (comma-separated)"
    )
    parser.add_argument(
        "--rescore", action="store_true", help="rewrite --out's tables with EQUIVALENT applied"
    )
    parser.add_argument(
        "--resume", action="store_true", help="reuse the outcomes an interrupted run left in --out"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON last")
    parser.add_argument("--evaluate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.evaluate:
        return _child_main(args.evaluate)
    if args.mutants < 1:
        parser.error("--mutants must be at least 1")
    from spikeforge.sim.matrix import check_names, core_params

    try:
        check_names([args.config])
    except ValueError as exc:
        parser.error(str(exc))
    if args.list:
        man = generate_synthesis(core_params(args.config), args.out / "original")
        original = (args.out / "original" / man["verilog"]).read_text()
        for m in select(sites(original), args.mutants, args.seed):
            print(f"{m.id:3d} {m.area:8s} {m.where:40s} {m.kind:5s} {m.what}")
        return 0
    if args.recheck or args.rescore:
        only = [int(n) for n in args.only.split(",") if n.strip()]
        results = recheck(args.out, rerun=args.recheck, only=only, timeout=args.timeout)
    else:
        results = campaign(
            args.out,
            config=args.config,
            count=args.mutants,
            seed=args.seed,
            timeout=args.timeout,
            resume=args.resume,
            tick=lambda o: print(_row_text(o), flush=True),
        )
    print()
    print(table([_outcome_from(d) for d in results["mutants"]]))
    print(f"\n{summary_line(results['summary'])}; {results['seconds']:.0f} s")
    print(f"tables: {args.out / 'results.md'}, {args.out / 'results.json'}")
    if args.json:
        print(json.dumps(results))
    return 0


def _row_text(o: Outcome) -> str:
    return "  ".join(_row(o)) + (f"  {o.message[:100]}" if o.message else "")


def _outcome_from(d: dict[str, Any]) -> Outcome:
    fields = {f.name for f in dataclasses.fields(Mutant)}
    m = Mutant(**{k: (tuple(v) if k == "block" else v) for k, v in d.items() if k in fields})
    return Outcome(
        m,
        d["result"],
        d["message"],
        d["seeds_run"],
        d["seconds"],
        d["infected"],
        d.get("new_check"),
        d.get("new_message", ""),
    )


if __name__ == "__main__":
    raise SystemExit(main())
