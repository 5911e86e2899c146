"""Resource and Fmax table of several cores on ECP5 (Yosys synth_ecp5 + nextpnr-ecp5).

Each config is generated, synthesized and placed and routed (target 100 MHz, seed 1); results
are cached per core hash and Verilog checksum in ``--out``, so an interrupted run resumes.
Prints a Markdown table.
Run: ``.venv/bin/python bench/synth_table.py [--out runs/synth-table] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from spikeforge.hw.generate import generate
from spikeforge.hw.params import CoreParams
from spikeforge.hw.synth import synthesize
from spikeforge.sw.config import SnnConfig

CONFIGS = {
    "default: 64x64, P=8, 8-bit, T=8": (
        {"layers": (64, 64), "timesteps": 8},
        {"lanes": 8},
    ),
    "hidden 64x64, P=8, 8-bit, T=8, e_prev, triangle, zero reset": (
        {"layers": (64, 64, 10), "timesteps": 8, "surrogate": "triangle", "reset": "zero"},
        {"lanes": 8, "layer": 0, "emit_error": True},
    ),
    "small 32x16, P=4, 4-bit, T=16, nearest": (
        {"layers": (32, 16), "timesteps": 16, "w_bits": 4, "rounding": "nearest"},
        {"lanes": 4},
    ),
    "wide 128x128, P=16, 16-bit, T=8": (
        {"layers": (128, 128), "timesteps": 8, "w_bits": 16},
        {"lanes": 16},
    ),
}


PNR_TIMEOUT = 1200
"""Seconds per place and route; a run past it is reported as 'Fmax unknown', not dropped."""


def run_one(name: str, out: Path) -> dict:
    net_kw, core_kw = CONFIGS[name]
    params = CoreParams(net=SnnConfig(**net_kw), **core_kw)
    folder = out / params.core_hash
    cached = folder / "row.json"
    generate(params, folder, checks=False)
    verilog_sha = hashlib.sha256((folder / f"{params.name}.v").read_bytes()).hexdigest()[:16]
    if cached.exists():
        row = json.loads(cached.read_text())
        if row.get("verilog_sha") == verilog_sha:  # the same RTL: reuse
            return row
    report = synthesize(
        folder / f"{params.name}.v",
        params.name,
        folder,
        pnr=True,
        no_rw_check=True,
        pnr_timeout=PNR_TIMEOUT,
    )
    row = {
        "config": name,
        "core_hash": params.core_hash,
        "verilog_sha": verilog_sha,
        **report.to_dict(),
    }
    cached.write_text(json.dumps(row, indent=2) + "\n")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/synth-table"))
    parser.add_argument("--jobs", type=int, default=2, help="parallel P&R runs [default: 2]")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(run_one, CONFIGS, [args.out] * len(CONFIGS)))
    print("| core | LUT4 | FF | BRAM (DP16KD) | DSP (MULT18) | Fmax MHz | Yosys s | P&R s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        fmax = "unknown" if r["fmax_mhz"] is None else f"{r['fmax_mhz']:.1f}"
        print(
            f"| {r['config']} | {r['luts']} | {r['ffs']} | {r['brams']} | {r['dsps']} | {fmax} "
            f"| {r['yosys_seconds']:.0f} | {r['pnr_seconds'] or 0:.0f} |"
        )
    (args.out / "table.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
