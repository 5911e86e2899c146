"""Post-synthesis simulation: the ``synth_ecp5`` netlist trains bit-exactly like the golden model.

The CI core (:data:`CI_CORE`, a matrix config) is synthesized with the flags of the reported
figures (``synth_ecp5 -no-rw-check``), its netlist written as Verilog and built under Verilator
with Yosys's ECP5 cell models (``sim/netlist.py``); ``sim/tb_core.py`` trains 2 steps through
the AXI4-Stream ports with every quantity compared. Synthesis and builds live in
``build/netlist-ci`` and are reused while the RTL is unchanged. The check can fail: a falsified
golden delta on the same build, and (slow: a second build) the netlist with one bit of an LFSR
seed flipped in its distributed-RAM ``INITVAL``. The DP16KD model, which Yosys's models lack, is
checked on its own against a plain array. ``make netlist-sim`` runs the default core.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from spikeforge.sim.matrix import core_params
from spikeforge.sim.netlist import (
    COLLISION,
    DP16KD_BODY,
    cell_models,
    modelled_cells,
    mutate_lfsr_seed,
    run_netlist,
    synthesize_netlist,
)
from spikeforge.toolchain import tool_env

BUILD_ROOT = Path(__file__).resolve().parents[1] / "build" / "netlist-ci"
CI_CORE = "t16-bptt"
"""8 x 4, 2 lanes, T = 16: the smallest CI matrix core without multipliers (about 3,900 LUT4 and
2,900 FF, one DP16KD, LFSR seeds in initialised distributed RAM)."""


def test_cell_models_give_the_black_boxes_a_body():
    models = cell_models()
    have = modelled_cells(models)
    for cell in ("LUT4", "CCU2C", "PFUMX", "L6MUX21", "TRELLIS_FF", "TRELLIS_DPR16X4"):
        assert cell in have
    assert {"DP16KD", "MULT18X18D"} <= have
    assert DP16KD_BODY in models
    assert "(* blackbox *)\nmodule DP16KD" not in models
    assert models.count("module TRELLIS_FF(") == 1  # includes inlined once


@pytest.mark.rtl
def test_netlist_of_the_ci_core_trains_two_steps_bit_exact_and_a_false_golden_value_fails():
    params = core_params(CI_CORE)
    result = run_netlist(params, BUILD_ROOT / CI_CORE, core=CI_CORE, seed=0, steps=2)
    summary = result.to_dict()
    assert result.passed, result.result.report()
    assert summary["steps_done"] == 2
    assert summary["simulated_cycles"] > 1000
    cells = summary["cells"]
    assert cells["DP16KD"] >= 1 and cells["TRELLIS_FF"] == summary["ffs"]
    assert cells["LUT4"] > 0 and cells["CCU2C"] > 0 and cells["TRELLIS_DPR16X4"] > 0
    # synthesized without the simulation-only read-during-write checks ($check, $print cells)
    assert {k for k, _ in result.netlist.report.cells if k.startswith("$")} <= {"$scopeinfo"}
    # the same build, one golden delta falsified: the netlist run must report it
    bad = run_netlist(params, BUILD_ROOT / CI_CORE, core=CI_CORE, seed=0, steps=1, corrupt=True)
    assert bad.build.cached and not bad.passed
    assert "step 0, seed 0: first mismatch in deltas" in bad.result.message


@pytest.mark.rtl
@pytest.mark.slow
def test_netlist_with_a_flipped_lfsr_seed_bit_fails(tmp_path):
    params = core_params(CI_CORE)
    net = synthesize_netlist(params, BUILD_ROOT / CI_CORE)
    name = mutate_lfsr_seed(net.path, tmp_path / "mutated.v")
    assert "mem_lfsr" in name
    assert (tmp_path / "mutated.v").read_text() != net.path.read_text()
    result = run_netlist(params, BUILD_ROOT / CI_CORE, core=CI_CORE, seed=0, steps=1, mutate=True)
    assert not result.passed
    assert "first mismatch" in result.result.message
    assert result.mutation is not None and name in result.mutation


def _pins(prefix: str, signal: str, bits: int, first: int = 0) -> str:
    return ", ".join(f".{prefix}{first + i}({signal}[{i}])" for i in range(bits))


def _ties(prefix: str, value: str, indices) -> str:
    return ", ".join(f".{prefix}{i}({value})" for i in indices)


# A self-checking testbench of the DP16KD model in the two modes Yosys maps the core's memories
# to: 36-bit pseudo dual port with byte enables (INITVAL words read back first) and 9-bit true
# dual port read-before-write; random traffic against a plain array, a read that meets a write
# of the other port every 500 cycles (the model must return the inverted old data). And the
# MULT18X18D model against 64-bit products, signed and unsigned operands.
DP16KD_TB = f"""
module tb;
  reg clk = 0;
  always #5 clk = ~clk;
  integer errors = 0, checks = 0, cycle, i;
  localparam [319:0] IV0 = {{16{{20'h3a5c3}}}} ^ 320'h123456789abcdef0123456789abcdef;
  reg [8:0] wa36, ra36; reg [3:0] be36; reg [35:0] wd36; wire [17:0] doa36, dob36;
  reg [35:0] ref36 [0:511];
  DP16KD #(.DATA_WIDTH_A(36), .DATA_WIDTH_B(36), .RESETMODE("ASYNC"), .INITVAL_00(IV0),
           .INITVAL_3F({{16{{20'h0beef}}}})) u36 (
    .CLKA(clk), .CLKB(clk), .CEA(1'b1), .CEB(1'b1), .WEA(1'b1), .WEB(1'b0), .OCEA(1'b0),
    .OCEB(1'b1), .RSTA(1'b0), .RSTB(1'b0), {_ties("CSA", "1'b0", range(3))},
    {_ties("CSB", "1'b0", range(3))}, {_pins("ADA", "be36", 4)}, .ADA4(1'b0),
    {_pins("ADA", "wa36", 9, 5)}, {_ties("ADB", "1'b0", range(5))}, {_pins("ADB", "ra36", 9, 5)},
    {_pins("DIA", "wd36", 18)}, {_pins("DIB", "wd36[35:18]", 18)},
    {_pins("DOA", "doa36", 18)}, {_pins("DOB", "dob36", 18)});
  reg [10:0] a9, b9; reg we9; reg [8:0] d9; wire [17:0] qa9, qb9;
  reg [8:0] ref9 [0:2047];
  DP16KD #(.DATA_WIDTH_A(9), .DATA_WIDTH_B(9), .WRITEMODE_A("READBEFOREWRITE"),
           .WRITEMODE_B("READBEFOREWRITE"), .RESETMODE("ASYNC")) u9 (
    .CLKA(clk), .CLKB(clk), .CEA(1'b1), .CEB(1'b1), .WEA(we9), .WEB(1'b0), .OCEA(1'b1),
    .OCEB(1'b1), .RSTA(1'b0), .RSTB(1'b0), {_ties("CSA", "1'b0", range(3))},
    {_ties("CSB", "1'b0", range(3))}, {_ties("ADA", "1'b0", range(3))}, {_pins("ADA", "a9", 11, 3)},
    {_ties("ADB", "1'b0", range(3))}, {_pins("ADB", "b9", 11, 3)}, {_pins("DIA", "d9", 9)},
    {_pins("DOA", "qa9", 18)}, {_pins("DOB", "qb9", 18)});
  reg [17:0] ma, mb; reg msa, msb; wire [35:0] mp; reg signed [63:0] ea, eb;
  MULT18X18D mul ({_pins("A", "ma", 18)}, {_pins("B", "mb", 18)}, .SIGNEDA(msa), .SIGNEDB(msb),
    {_pins("P", "mp", 36)});
  reg [35:0] exp36; reg [8:0] expa9, expb9; reg poison;
  initial begin
    for (i = 0; i < 512; i = i + 1) ref36[i] = 36'd0;
    for (i = 0; i < 8; i = i + 1) ref36[i] = {{IV0[40*i + 20 +: 18], IV0[40*i +: 18]}};
    for (i = 504; i < 512; i = i + 1) ref36[i] = {{18'h0beef, 18'h0beef}};
    for (i = 0; i < 2048; i = i + 1) ref9[i] = 9'd0;
    for (cycle = 0; cycle < 4000; cycle = cycle + 1) begin
      ra36 = (cycle < 16) ? ((cycle < 8) ? cycle : 504 + cycle - 8) : $urandom % 24;
      wa36 = (cycle < 16) ? 9'd100 : $urandom % 24;
      be36 = (cycle < 16) ? 4'd0 : $urandom;
      wd36 = {{$urandom, $urandom}};
      if (cycle % 500 == 250) begin wa36 = ra36; be36 = 4'b0001; end
      a9 = $urandom % 40; b9 = $urandom % 40; we9 = $urandom; d9 = $urandom;
      if (we9 && a9 == b9) b9 = b9 + 1;
      ma = $urandom; mb = $urandom; msa = $urandom; msb = $urandom;
      ea = msa ? {{{{46{{ma[17]}}}}, ma}} : {{46'd0, ma}};
      eb = msb ? {{{{46{{mb[17]}}}}, mb}} : {{46'd0, mb}};
      exp36 = ref36[ra36]; poison = wa36 == ra36 && be36 != 0;
      expa9 = ref9[a9]; expb9 = ref9[b9];
      @(posedge clk);
      for (i = 0; i < 4; i = i + 1) if (be36[i]) ref36[wa36][9*i +: 9] = wd36[9*i +: 9];
      if (we9) ref9[a9] = d9;
      @(negedge clk);
      checks = checks + 3;
      if (mp !== 36'(ea * eb)) errors = errors + 1;
      if ({{dob36, doa36}} !== (poison ? ~exp36 : exp36)) errors = errors + 1;
      if (qb9 !== {{9'd0, expb9}} || qa9 !== {{9'd0, expa9}}) errors = errors + 1;
    end
    $display("DP16KD self-test: %0d checks, %0d errors", checks, errors);
    $finish;
  end
endmodule
"""


@pytest.mark.rtl
def test_dp16kd_and_mult18_models_match_plain_references(tmp_path):
    (tmp_path / "tb.v").write_text(DP16KD_TB)
    (tmp_path / "models.v").write_text(cell_models())
    env = {**tool_env(), "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include"}
    cmd = ["verilator", "--binary", "--timing", "-CFLAGS", "-fcoroutines", "-Wno-fatal"]
    cmd += ["--top-module", "tb", "-Mdir", "obj", "tb.v", "models.v"]
    subprocess.run(cmd, cwd=tmp_path, env=env, check=True, capture_output=True)
    out = subprocess.run(
        [str(tmp_path / "obj" / "Vtb")], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout
    assert "DP16KD self-test: 12000 checks, 0 errors" in out
    assert out.count("B read the bits A wrote (undefined): inverted") == 1  # warned once
    hits = {m[1]: int(m[2]) for m in COLLISION.finditer(out)}  # and counted: 8 forced + random
    assert list(hits) == ["tb.u36"] and hits["tb.u36"] >= 8
