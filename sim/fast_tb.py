"""Fast transactors: the host stream's driver and monitor inside the simulated design.

:func:`wrapper_verilog` writes ``spikeforge_fast_tb``, a Verilog testbench module around a
generated top (a core: AXI4-Stream ``s_axis`` in, ``m_axis`` out). It has two modes, chosen by
its ``fast`` input, so one Verilator build serves both:

* ``fast = 0`` -- the wrapper is transparent: ``clk``, ``rst``, ``s_axis_*`` and ``m_axis_*``
  reach the design unchanged, and cocotbext-axi drives them (the reference BFM, one Python
  wake-up per clock edge);
* ``fast = 1`` -- a rising ``fast_start`` loads the command stream from ``cmd.hex`` (in the
  simulator's working folder) into a testbench memory, the wrapper makes its own 100 MHz clock
  (``always #5``: Verilator's ``--timing`` scheduler, no Python per edge), holds the design in
  reset for :data:`RESET_CYCLES` cycles and plays the stream: each packet is sent word by word,
  then the wrapper waits for the answers the packet announced before it sends the next one
  (stop and wait, as every host of a core does). Each answer word is captured into a second
  memory. Idle cycles on ``s_axis`` and backpressure on ``m_axis`` are drawn from two 32-bit
  xorshift generators seeded by ``fast_seed``: a cycle idles when the generator's low byte is
  below ``fast_idle`` (probability ``fast_idle / 256``), likewise ``fast_bp``. At the end (the
  stream's end marker, all answers in) or when nothing moved for ``fast_deadline`` cycles, or
  when the answer memory is full, the wrapper writes ``rsp.hex`` and ``fast.txt`` (cycles, words,
  the reason it stopped) and raises ``fast_done`` -- the one signal cocotb waits on.

Built with ``SPIKEFORGE_BARE`` defined (``verilator --binary``: Verilator's own C++ main loop,
no cocotb, no VPI), the wrapper starts itself, reads its settings from plusargs (``+idle=N
+bp=N +seed=N +deadline=N``) and ends the simulation with ``$finish`` -- the ceiling the fast
mode is measured against (``bench/sim_speed.py``).

Word layouts (one source: :data:`CMD_ENTRY` and :data:`RSP_ENTRY`, hex lines of ``$readmemh``):
a command entry is ``{end, answers[8], last, data[32]}`` (``answers``: packets the host waits
for after this word, non-zero only on a packet's last word; ``end``: the stream is over); a
response entry is ``{last, data[32]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from amaranth.lib import data

__all__ = [
    "CMD_DEPTH_BITS",
    "CMD_ENTRY",
    "RESET_CYCLES",
    "RSP_DEPTH_BITS",
    "RSP_ENTRY",
    "TOP",
    "FastSettings",
    "emit_wrapped",
    "rate_byte",
    "read_answers",
    "read_status",
    "wrapper_verilog",
    "write_commands",
]

TOP = "spikeforge_fast_tb"
"""Module name of the wrapper."""
CMD_DEPTH_BITS = 20
"""The command memory holds ``2**CMD_DEPTH_BITS`` words (the digits epoch on the RTL,
``sim/epoch.py``, sends 607,735; 8 MB of simulator memory)."""
RSP_DEPTH_BITS = 20
"""The answer memory holds ``2**RSP_DEPTH_BITS`` words."""
RESET_CYCLES = 4
"""Cycles the wrapper holds the design in reset before it plays the stream."""

CMD_ENTRY = data.StructLayout({"data": 32, "last": 1, "answers": 8, "end": 1})
"""One command-memory word (``$readmemh`` line)."""
RSP_ENTRY = data.StructLayout({"data": 32, "last": 1})
"""One answer-memory word (``$writememh`` line)."""

STOP_REASONS = {0: "done", 1: "deadline", 2: "answer memory full", 3: "command memory full"}
"""``fast.txt``'s reason codes."""


def rate_byte(probability: float) -> int:
    """The wrapper's 8-bit threshold for a per-cycle ``probability`` in ``[0, 1)``
    (``round(256 p)``, at most 255)."""
    if not 0.0 <= probability < 1.0:
        raise ValueError(f"a stall probability lies in [0, 1), not {probability}")
    return min(255, round(probability * 256))


class FastSettings:
    """Idle and backpressure probabilities, the generators' seed and the deadline of one fast
    run, as the wrapper takes them (ports, or plusargs in a bare build)."""

    def __init__(
        self, *, idle: float = 0.0, backpressure: float = 0.0, seed: int = 0, deadline: int
    ):
        if deadline < 1 or deadline >= 1 << 32:
            raise ValueError(f"deadline must lie in [1, 2**32) cycles, not {deadline}")
        self.idle = rate_byte(idle)
        self.backpressure = rate_byte(backpressure)
        self.seed = (seed * 2654435761 + 1) & 0xFFFFFFFF or 1  # never 0: xorshift's fixed point
        self.deadline = deadline

    def plusargs(self) -> list[str]:
        return [
            f"+idle={self.idle}",
            f"+bp={self.backpressure}",
            f"+seed={self.seed}",
            f"+deadline={self.deadline}",
        ]


def write_commands(path: Path, packets: Sequence[tuple[Sequence[int], int]]) -> int:
    """Write ``cmd.hex``: every packet (its words and the answer packets it announces), then
    the end marker. Returns the number of entries (:class:`ValueError` if they do not fit)."""
    lines = []
    for words, answers in packets:
        if not words:
            raise ValueError("a packet has at least one word")
        if not 0 <= answers < 1 << 8:
            raise ValueError(f"a packet announces 0 .. 255 answers, not {answers}")
        for n, word in enumerate(words):
            last = n == len(words) - 1
            entry = {"data": word & 0xFFFFFFFF, "last": int(last), "answers": answers * last}
            lines.append(_bits(CMD_ENTRY, entry))
    lines.append(_bits(CMD_ENTRY, {"end": 1}))
    if len(lines) > 1 << CMD_DEPTH_BITS:
        raise ValueError(
            f"the command stream has {len(lines)} words; the wrapper holds {1 << CMD_DEPTH_BITS}"
        )
    digits = (CMD_ENTRY.size + 3) // 4
    path.write_text("".join(f"{v:0{digits}x}\n" for v in lines))
    return len(lines)


def _bits(layout: data.StructLayout, fields: dict[str, int]) -> int:
    value = 0
    for name, v in fields.items():
        field = layout[name]
        value |= (v & ((1 << field.width) - 1)) << field.offset
    return value


def read_answers(path: Path) -> list[list[int]]:
    """The answer packets in ``rsp.hex`` (none when it does not exist), each a list of words;
    a last packet without ``last`` is returned as it is (the run stopped inside it)."""
    if not path.exists():
        return []
    packets, current = [], []
    data_field, last_field = RSP_ENTRY["data"], RSP_ENTRY["last"]
    for line in path.read_text().split():
        if line.startswith("//"):
            continue
        v = int(line, 16)
        current.append((v >> data_field.offset) & 0xFFFFFFFF)
        if (v >> last_field.offset) & 1:
            packets.append(current)
            current = []
    if current:
        packets.append(current)
    return packets


def read_status(path: Path) -> dict[str, int | str]:
    """``fast.txt``: ``cycles`` the stream took, ``commands`` and ``answers`` words moved and
    the ``reason`` the wrapper stopped (:data:`STOP_REASONS`)."""
    cycles, commands, answers, reason = (int(v) for v in path.read_text().split())
    return {
        "cycles": cycles,
        "commands": commands,
        "answers": answers,
        "reason": STOP_REASONS.get(reason, f"unknown ({reason})"),
    }


def wrapper_verilog(top: str, extra_outputs: Sequence[tuple[str, int]] = ()) -> str:
    """The Verilog of :data:`TOP` around the module ``top``; ``extra_outputs`` are the
    design's other outputs (name, width: e.g. ``rw_checked``), passed through."""
    cw, rw = CMD_ENTRY.size, RSP_ENTRY.size
    last, answers, end = (CMD_ENTRY[n].offset for n in ("last", "answers", "end"))
    extra_ports = "".join(f",\n  output [{w - 1}:0] {n}" for n, w in extra_outputs)
    extra_conns = "".join(f",\n    .{n}({n})" for n, _ in extra_outputs)
    return f"""\
// Generated by spikeforge.sim.fast_tb -- the host stream's driver and monitor in the design.
module {TOP} (
  input clk,
  input rst,
  input [31:0] s_axis_tdata,
  input s_axis_tvalid,
  output s_axis_tready,
  input s_axis_tlast,
  output [31:0] m_axis_tdata,
  output m_axis_tvalid,
  input m_axis_tready,
  output m_axis_tlast,
  input fast,
  input fast_start,
  input [7:0] fast_idle,
  input [7:0] fast_bp,
  input [31:0] fast_seed,
  input [31:0] fast_deadline,
  output reg fast_done{extra_ports}
);
  // -- settings: ports, or plusargs in a bare build -------------------------------------------
`ifdef SPIKEFORGE_BARE
  wire mode = 1'b1;
  reg go = 1'b0;
  reg [7:0] idle_rate = 8'd0, bp_rate = 8'd0;
  reg [31:0] seed = 32'd1, deadline = 32'd2000000;
  initial begin
    if (!$value$plusargs("idle=%d", idle_rate)) idle_rate = 8'd0;
    if (!$value$plusargs("bp=%d", bp_rate)) bp_rate = 8'd0;
    if (!$value$plusargs("seed=%d", seed)) seed = 32'd1;
    if (!$value$plusargs("deadline=%d", deadline)) deadline = 32'd2000000;
    #1 go = 1'b1;
  end
`else
  wire mode = fast;
  wire go = fast_start;
  wire [7:0] idle_rate = fast_idle;
  wire [7:0] bp_rate = fast_bp;
  wire [31:0] seed = fast_seed;
  wire [31:0] deadline = fast_deadline;
`endif

  // -- the wrapper's own clock and the design's clock and reset -------------------------------
  reg tclk = 1'b0;
  always #5 tclk = ~tclk;
  wire dclk = mode ? tclk : clk;
  reg in_reset = 1'b1;
  wire drst = mode ? in_reset : rst;

  // -- memories ----------------------------------------------------------------------------
  reg [{cw - 1}:0] cmd_mem [0:{(1 << CMD_DEPTH_BITS) - 1}];
  reg [{rw - 1}:0] rsp_mem [0:{(1 << RSP_DEPTH_BITS) - 1}];
  reg loaded = 1'b0;
  always @(posedge go) begin
    $readmemh("cmd.hex", cmd_mem);
    loaded = 1'b1;
  end

  // -- the stream player ------------------------------------------------------------------
  localparam IDLE = 2'd0, RESET = 2'd1, RUN = 2'd2, STOP = 2'd3;
  reg [1:0] state = IDLE;
  reg [7:0] hold = 8'd0;
  reg [{CMD_DEPTH_BITS}:0] cptr = 0;
  reg [{RSP_DEPTH_BITS}:0] rptr = 0;
  reg [15:0] pending = 16'd0;
  reg in_packet = 1'b0;
  reg [31:0] cycles = 32'd0, quiet = 32'd0;
  reg [1:0] reason = 2'd0;
  reg holding = 1'b0;
  integer fd;
  reg [31:0] xa = 32'd1, xb = 32'd2;
  wire [{cw - 1}:0] entry = cmd_mem[cptr[{CMD_DEPTH_BITS - 1}:0]];
  wire at_end = entry[{end}];
  wire [7:0] announced = entry[{answers + 7}:{answers}];
  wire idle_now = xa[7:0] < idle_rate;
  wire bp_now = xb[7:0] < bp_rate;
  // AXI4-Stream: a presented word stays valid until it is taken (idle only between words)
  wire may_send = state == RUN && !at_end && (in_packet || pending == 16'd0)
                  && (holding || !idle_now);
  wire may_take = state == RUN && !bp_now;
  wire d_tready, d_tvalid, d_tlast;
  wire [31:0] d_tdata;
  wire sent = may_send && d_tready;
  wire taken = may_take && d_tvalid;
  wire [31:0] x1 = xa ^ (xa << 13), x2 = x1 ^ (x1 >> 17), xa_next = x2 ^ (x2 << 5);
  wire [31:0] y1 = xb ^ (xb << 13), y2 = y1 ^ (y1 >> 17), xb_next = y2 ^ (y2 << 5);

  always @(posedge tclk) begin
    if (mode) begin
      case (state)
        IDLE: if (loaded) begin
          state <= RESET;
          xa <= seed;
          xb <= seed ^ 32'h9e3779b9;
        end
        RESET: begin
          hold <= hold + 8'd1;
          if (hold == 8'd{RESET_CYCLES - 1}) begin
            in_reset <= 1'b0;
            state <= RUN;
          end
        end
        RUN: begin
          cycles <= cycles + 32'd1;
          xa <= xa_next;
          xb <= xb_next;
          holding <= may_send && !d_tready;
          if (sent) begin
            cptr <= cptr + 1'b1;
            in_packet <= !entry[{last}];
          end
          if (taken) begin
            rsp_mem[rptr[{RSP_DEPTH_BITS - 1}:0]] <= {{d_tlast, d_tdata}};
            rptr <= rptr + 1'b1;
          end
          pending <= pending + (sent && entry[{last}] ? {{8'd0, announced}} : 16'd0)
                     - (taken && d_tlast ? 16'd1 : 16'd0);
          quiet <= (sent || taken) ? 32'd0 : quiet + 32'd1;
          if (at_end && !in_packet && pending == 16'd0) begin
            state <= STOP;
          end else if (quiet >= deadline) begin
            state <= STOP;
            reason <= 2'd1;
          end else if (taken && rptr == {1 << RSP_DEPTH_BITS} - 1) begin
            state <= STOP;
            reason <= 2'd2;
          end else if (sent && cptr == {1 << CMD_DEPTH_BITS} - 1) begin
            state <= STOP;
            reason <= 2'd3;
          end
        end
        STOP: if (!fast_done) begin
          if (rptr != 0) $writememh("rsp.hex", rsp_mem, 0, rptr - 1);
          fd = $fopen("fast.txt", "w");
          $fwrite(fd, "%0d %0d %0d %0d\\n", cycles, cptr, rptr, reason);
          $fclose(fd);
          fast_done <= 1'b1;
`ifdef SPIKEFORGE_BARE
          $finish;
`endif
        end
      endcase
    end
  end
  initial fast_done = 1'b0;

  // -- the design: driven by the player (fast) or by the ports (cocotbext-axi) --------------
  assign s_axis_tready = mode ? 1'b0 : d_tready;
  assign m_axis_tdata = d_tdata;
  assign m_axis_tvalid = mode ? 1'b0 : d_tvalid;
  assign m_axis_tlast = d_tlast;
  {top} dut (
    .clk(dclk),
    .rst(drst),
    .s_axis_tdata(mode ? entry[31:0] : s_axis_tdata),
    .s_axis_tvalid(mode ? may_send : s_axis_tvalid),
    .s_axis_tready(d_tready),
    .s_axis_tlast(mode ? entry[{last}] : s_axis_tlast),
    .m_axis_tdata(d_tdata),
    .m_axis_tvalid(d_tvalid),
    .m_axis_tready(mode ? may_take : m_axis_tready),
    .m_axis_tlast(d_tlast){extra_conns}
  );
endmodule
"""


AXIS_PORTS = {
    "clk",
    "rst",
    "s_axis_tdata",
    "s_axis_tvalid",
    "s_axis_tready",
    "s_axis_tlast",
    "m_axis_tdata",
    "m_axis_tvalid",
    "m_axis_tready",
    "m_axis_tlast",
}
"""The ports the wrapper drives or watches; every other output is passed through."""
WRAPPER_FILE = "fast_tb.v"


def emit_wrapped(manifest: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Write the wrapper of a generated design (its ``manifest``) beside it in ``out_dir``;
    return the manifest with ``sources`` (design and wrapper) and the wrapper as ``top``."""
    ports = {p["name"]: p for p in manifest["ports"]}
    missing = sorted(AXIS_PORTS - set(ports))
    if missing:
        raise ValueError(f"{manifest['top']} lacks the stream ports {', '.join(missing)}")
    extra = [
        (name, p["width"])
        for name, p in ports.items()
        if name not in AXIS_PORTS and p["direction"] == "out"
    ]
    (out_dir / WRAPPER_FILE).write_text(wrapper_verilog(manifest["top"], extra))
    return {**manifest, "wrapped": manifest["top"], "sources": [manifest["verilog"], WRAPPER_FILE]}
