# spikeforge -- run `make help` for the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup demo demo-train test test-fast lint format bench wbits-table core-cycles synth-table \
	sweep-full regress regress-full sim-speed epoch-rtl federated-table traffic-table fit-table mnist-array array-scaling fuzz board-sim formal netlist-sim mutate clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: $(STAMP) ## create .venv and install the pinned toolchain from PyPI

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m spikeforge.toolchain  # LZ4 for Verilator's FST waveforms, from its PyPI sdist
	touch $@

demo: setup ## co-design sweep of the small space (24 points): Pareto front + runs/demo-sweep/report.html
	$(VENV)/bin/spikeforge sweep --space small --out runs/demo-sweep

sweep-full: setup ## the full space: 120 NSGA-II trials, Fmax of the Pareto points, 2 Dask workers (6.7 h on 2 cores; resumes)
	$(VENV)/bin/spikeforge sweep --space full --workers 2 --out runs/sweep-full

demo-train: setup ## train the digits network in float and integer (8-bit) mode
	$(VENV)/bin/spikeforge train --mode float --epochs 20 --out runs/demo-float
	$(VENV)/bin/spikeforge train --mode int --epochs 20 --out runs/demo-int

# The suite runs on TEST_WORKERS pytest-xdist processes, a test file per process at a time
# (the files' builds are shared by their tests) in the order tests/conftest.py sets (the long
# files first); TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

test: setup ## lint, then the whole test suite (two test files at a time)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PYTEST)

test-fast: setup ## the test suite without the slow accuracy runs
	$(PYTEST) -m "not slow"

lint: setup ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: setup ## training throughput: integer golden model vs float reference vs snnTorch
	$(PY) bench/train_throughput.py

wbits-table: setup ## integer accuracy for w_bits 4, 6, 8, 12, 16 (writes runs/wbits)
	$(PY) bench/wbits_table.py --out runs/wbits

core-cycles: setup ## default core in Amaranth's simulator: forward cycles vs spike density, BP/WG vs delta density
	$(PY) bench/core_cycles.py

synth-table: setup ## LUT/FF/BRAM/DSP and Fmax of four cores on ECP5 (<= 40 min, runs/synth-table)
	$(PY) bench/synth_table.py --out runs/synth-table

regress: setup ## Verilator + cocotb: the CI matrix (3 seeds) and the digits run on the RTL
	$(VENV)/bin/spikeforge regress --matrix ci --seeds 3

regress-full: setup ## all 26 matrix configs x 5 seeds x 4 steps; digits 200 samples (~27 min)
	$(VENV)/bin/spikeforge regress --matrix full --seeds 5 --steps 4 --digits 200 \
		--out build/regress-full

formal: setup ## SymbiYosys proofs of the stream rules, links, router, merger, host (~6 min, build/formal)
	$(PY) -m spikeforge.sim.formal --out build/formal --json

netlist-sim: setup ## the default core's synth_ecp5 netlist trains 2 steps bit-exact (Verilator, ECP5 models)
	$(PY) -m spikeforge.sim.netlist --core default --out build/netlist --json

mutate: setup ## 40 mutants of a CI core's Verilog against the regression (~30-60 min, build/mutate)
	$(PY) -m spikeforge.sim.mutate --mutants 40 --seed 1 --out build/mutate --json

fuzz: setup ## fuzz the host port while it trains: default core 10,000 packets, 3-core array 3,000
	$(VENV)/bin/spikeforge fuzz --packets 10000 --seed 1 --out build/fuzz/default-core
	$(VENV)/bin/spikeforge fuzz --cores 3 --packets 3000 --seed 1 --out build/fuzz/array-c3

sim-speed: setup ## cycles/s of the default core, 30% stalls: fast transactors vs cocotbext-axi vs bare Verilator vs Amaranth
	$(PY) bench/sim_speed.py

epoch-rtl: setup ## a whole digits epoch (1,437 samples) + the test split on a 2-core array's Verilog, bit-exact (~10 min)
	$(PY) bench/epoch_rtl.py

fit-table: setup ## the largest 784-h-10 network each ECP5 holds, by block RAM (seconds; docs/results.md)
	$(PY) bench/fit_table.py

mnist-array: setup ## 784-256-10 on one ECP5-85F: 2 steps bit-exact under Verilator, the ULX3S-85F build (~2 h)
	$(PY) bench/mnist_array.py --build

traffic-table: setup ## off-chip bytes per sample: the chip against the GPU baseline (seconds; docs/energy.md)
	$(PY) bench/traffic_table.py

federated-table: setup ## 5 workers on digits, IID and Dirichlet(0.5), 20 rounds, against centralized, 3 seeds (~25 min)
	$(PY) bench/federated_table.py --seeds 3 --png docs/federated.png

array-scaling: setup ## Verilator: cycles/sample of one layer on 1-16 cores and a deep net on 4, 12, 24
	$(PY) bench/array_scaling.py --cores 1,2,4,8,16
	$(PY) bench/array_scaling.py --layers 64,128,128,128,10 --cores 4,12,24 --steps 2 \
		--out build/array-scaling-deep

board-sim: setup ## virtual board (Verilator, pty): digits, 1 epoch + 360 predictions, clean and damaged line
	$(VENV)/bin/spikeforge train --target sim $(BOARD_SIM_NET) --out runs/board-sim-events
	$(VENV)/bin/spikeforge train --target sim $(BOARD_SIM_NET) --rate-encoder \
		--sim-errors 0.001 --sim-seed 1 --frame-words 32 --retries 30 --out runs/board-sim-damaged

BOARD_SIM_NET = --layers 64,10 --timesteps 4 --lanes 5 --epochs 1 --lr-schedule constant

clean: ## remove build and run outputs (keeps .venv)
	rm -rf runs build .pytest_cache .ruff_cache .hypothesis
