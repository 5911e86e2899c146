"""Verilog and manifest generation for one core, and the Verilator lint with its waivers.

``generate(params, out)`` writes ``out/spikeforge_core.v`` (the top module and its
submodules) and ``out/manifest.json``: parameters, ports, opcodes,
quantities, memories, cycle formulas and the hashes that identify the build.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from importlib.metadata import version
from pathlib import Path
from typing import Any

from amaranth.back import verilog
from amaranth.hdl import Shape
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from spikeforge.hw import backward, forward, gradient, rw_check, update
from spikeforge.hw.array import CoreArray
from spikeforge.hw.axis import AxiStreamTop
from spikeforge.hw.core import SpikingCore
from spikeforge.hw.datapath import READ_LATENCY
from spikeforge.hw.params import BUS_BITS, CoreParams
from spikeforge.hw.protocol import (
    COUNTERS,
    MAGIC,
    QUANTITIES,
    ROUTE,
    ArrayRules,
    CoreRules,
    Status,
)
from spikeforge.hw.rack import CoreRack, check_cores
from spikeforge.toolchain import run_tool, tool_env

__all__ = ["LINT_WAIVERS", "generate", "generate_array", "generate_rack", "lint", "manifest"]

LINT_TIMEOUT = 600
"""Seconds ``verilator --lint-only`` may take on one design (the 16-core array: seconds)."""
LINT_WAIVERS = {
    "WIDTHEXPAND": "Amaranth emits operands narrower than their context and relies on Verilog's "
    "implicit zero/sign extension, which is exactly Amaranth's semantics",
    "WIDTHTRUNC": "Amaranth assigns wider intermediate expressions to narrower signals on "
    "purpose (slices of an exact sum); truncation is Amaranth's semantics",
    "CASEINCOMPLETE": "Amaranth emits case statements without default when a default assignment "
    "precedes them in the same always block",
    "PROCASSINIT": "Amaranth gives every register an initial value in its declaration and "
    "also assigns it in always blocks (reset value plus synchronous logic)",
    "DECLFILENAME": "Amaranth writes the whole hierarchy into one file; submodules are named "
    "after their path (spikeforge_core.bp), so only the top matches the file name",
    "UNUSEDSIGNAL": "Amaranth keeps unused bits of sliced intermediate wires (e.g. the low "
    "fraction bits of master weights, bits of a word a check only partly needs); Yosys "
    "removes them",
}
"""Every Verilator -Wall warning class the generated Verilog is allowed to raise, with why."""


def _cycle_formulas(params: CoreParams) -> dict[str, Any]:
    """The engines' documented cycle formulas, and their values for this core."""
    error = (
        f" + n_in*max(1, K_t) + {backward.bp_error_drain(params.lanes)}"
        if params.emits_error
        else ""
    )
    return {
        "forward": f"sum_t ({1 + READ_LATENCY} + G*(a_t + 1)) + {forward.FP_DEPTH}, more where "
        f"a group's integrate waits {forward.FP_DEPTH} cycles after its previous one "
        "(forward_schedule)",
        "bp": f"sum_t (G + {backward.BP_DELTA_DRAIN}{error}), K_t: groups with a nonzero delta[t]",
        "wg": f"1 + sum_t ({gradient.WG_TIMESTEP_OVERHEAD} + a_t*K_t) + [sum_t a_t*K_t>0]*"
        f"{gradient.WG_DRAIN} when not waiting for BP",
        "update": update.update_formula(params),
        "forward_dense": forward.forward_cycles(params, [params.n_in] * params.timesteps),
        "bp_dense": backward.backward_cycles(params, backward.dense_groups(params)),
        "update_value": update.update_cycles(params),
    }


def _ports(dut) -> list[dict[str, Any]]:
    """Clock, reset and every port of a component as Verilog names them (``spk_i__payload``)."""
    ports = [
        {"name": "clk", "direction": "in", "width": 1},
        {"name": "rst", "direction": "in", "width": 1},
    ]
    for path, member, _ in dut.signature.flatten(dut):
        ports.append(
            {
                "name": "__".join(str(part) for part in path),
                "direction": "in" if member.flow == In else "out",
                "width": Shape.cast(member.shape).width,
            }
        )
    return ports


def manifest(params: CoreParams, dut: wiring.Component, verilog_name: str) -> dict[str, Any]:
    """The manifest of one core; ``dut`` is the component whose ports it lists (the generated
    top, or the core inside a rack or an array)."""
    ports = _ports(dut)
    rules = CoreRules.of(params)
    return {
        "top": params.name,
        "verilog": verilog_name,
        "core_hash": params.core_hash,
        "net_hash": params.net.config_hash,
        "params": params.to_dict(),
        "derived": {
            "n_in": params.n_in,
            "n_out": params.n_out,
            "groups": params.groups,
            "timesteps": params.timesteps,
            "current_bits": params.current_bits,
            "lr_shift_range": [params.lr_min, params.lr_max],
            "read_latency": READ_LATENCY,
            "bram_estimate": params.bram_estimate,
        },
        "bus_bits": BUS_BITS,
        "ports": ports,
        "magic": MAGIC,
        "opcodes": {op.name: int(op) for op in rules.commands},
        "status": {st.name: int(st) for st in Status},
        "write_buffer": params.write_buffer,
        "write_rows": {q.name: rules.chunk_rows(q) for q in rules.writable},
        "quantities": {
            q.name: {
                "id": int(q),
                "outer": info.outer,
                "inner": info.inner,
                "signed": info.signed,
                "writable": info.writable,
            }
            for q, info in QUANTITIES.items()
            if q.name != "EPREV" or params.emits_error
        },
        "counters": list(COUNTERS),
        "memories": [
            {
                "name": m.name,
                "depth": m.depth,
                "width": m.width,
                "lanes": m.lanes,
                "bits": m.bits,
                "bram_estimate": m.bram_estimate,
                "purpose": m.purpose,
            }
            for m in params.memories
        ],
        "cycles": _cycle_formulas(params),
        "verilator_waivers": LINT_WAIVERS,
        "versions": {"spikeforge": version("spikeforge"), "amaranth": version("amaranth")},
    }


def _write_top(top, name: str, out_dir: Path, describe) -> dict[str, Any]:
    """Write ``top``'s Verilog as ``out_dir/<name>.v`` and ``describe(verilog file name)`` as
    ``out_dir/manifest.json``; return the manifest."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vname = f"{name}.v"
    (out_dir / vname).write_text(verilog.convert(top, name=name, emit_src=False))
    man = {**describe(vname), "rw_checks": rw_check.enabled()}
    (out_dir / "manifest.json").write_text(json.dumps(man, indent=2) + "\n")
    return man


def _checks(on: bool):
    """Build with the read-during-write checks (simulation) or without them (synthesis)."""
    if not isinstance(on, bool):
        raise TypeError(f"checks must be a bool, not {on!r}")
    return nullcontext() if on else rw_check.disabled()


def generate(params: CoreParams, out_dir: Path, *, checks: bool = True) -> dict[str, Any]:
    """Write the core's Verilog and manifest into ``out_dir``; return the manifest.

    ``checks`` builds the read-during-write checks (:mod:`~spikeforge.hw.rw_check`: assertions
    and the ``rw_checked`` output) into the Verilog, for simulation; synthesis passes False.
    """
    if not isinstance(params, CoreParams):
        raise TypeError(f"params must be a CoreParams, not {params!r}")
    with _checks(checks):
        top = AxiStreamTop(SpikingCore(params))
        return _write_top(top, params.name, out_dir, lambda vname: manifest(params, top, vname))


def generate_rack(cores: list[CoreParams], out_dir: Path, *, checks: bool = True) -> dict[str, Any]:
    """Write a :class:`~spikeforge.hw.rack.CoreRack` of ``cores`` and its manifest (one core
    manifest per entry, under ``cores``, with ports prefixed ``c{n}_``); ``checks`` as in
    :func:`generate`."""
    with _checks(checks):
        return _generate_rack(cores, out_dir)


def _generate_rack(cores: list[CoreParams], out_dir: Path) -> dict[str, Any]:
    rack = CoreRack(check_cores(cores))  # checked first: a half-built component would warn

    def describe(vname: str) -> dict[str, Any]:
        return {
            "top": rack.name,
            "verilog": vname,
            "rack_hash": rack.rack_hash,
            "port_prefixes": [f"c{n}_" for n in range(len(cores))],
            "cores": [manifest(p, dut, vname) for p, dut in zip(cores, rack.duts, strict=True)],
        }

    return _write_top(rack, rack.name, out_dir, describe)


def generate_array(
    cores: list[CoreParams], out_dir: Path, *, link_stall: int = 0, checks: bool = True
) -> dict[str, Any]:
    """Write a :class:`~spikeforge.hw.array.CoreArray` of ``cores`` and its manifest: the array's
    ports, route word, layers (core indices) and one core manifest per core. ``link_stall``
    adds the verification-only stall gates on every link; ``checks`` as in :func:`generate`."""
    with _checks(checks):
        return _generate_array(cores, out_dir, link_stall)


def _generate_array(cores: list[CoreParams], out_dir: Path, link_stall: int) -> dict[str, Any]:
    array = CoreArray(cores, link_stall=link_stall)
    top = AxiStreamTop(array)

    def describe(vname: str) -> dict[str, Any]:
        return {
            "top": array.name,
            "verilog": vname,
            "array_hash": array.array_hash,
            "net_hash": cores[0].net.config_hash,
            "ports": _ports(top),
            "route": {
                "word": "ROUTE << 24 | first << 12 | count (count 0: the array itself)",
                "ROUTE": ROUTE,
            },
            "array_opcodes": {op.name: int(op) for op in ArrayRules(len(cores)).commands},
            "watchdog_cycles": array.timeout,
            "status_core_bits": "status word bits 0-15: the answering core (0xFFFF: the array)",
            "layers": array.layers,
            "link_stall": link_stall,
            "cores": [manifest(p, dut, vname) for p, dut in zip(cores, array.duts, strict=True)],
            "verilator_waivers": LINT_WAIVERS,
            "versions": {"spikeforge": version("spikeforge"), "amaranth": version("amaranth")},
        }

    return _write_top(top, array.name, out_dir, describe)


def lint(verilog_path: Path, *, waivers: dict[str, str] = LINT_WAIVERS) -> list[str]:
    """Run ``verilator --lint-only -Wall`` with the waivers; return the remaining warnings."""
    verilog_path = Path(verilog_path)
    cmd = ["verilator", "--lint-only", "-Wall", *[f"-Wno-{w}" for w in waivers]]
    done = run_tool(
        [*cmd, verilog_path.name], cwd=verilog_path.parent, env=tool_env(), timeout=LINT_TIMEOUT
    )
    if done.timed_out:
        return [f"verilator --lint-only ran past its deadline of {LINT_TIMEOUT} s"]
    lines = [ln for ln in done.output.splitlines() if ln.startswith("%")]
    if done.returncode != 0 and not lines:
        lines = [f"verilator exited {done.returncode}: {done.output.strip()[-500:]}"]
    return lines
