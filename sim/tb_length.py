"""cocotb testbench: a WRITE one whole row too long is refused (BAD_LENGTH) and writes nothing.

The regression only sends well-formed packets; the fuzz testbench extends packets by 1 to 4
words, never by exactly one more row of a many-valued quantity. Mutation testing
(``sim/mutate.py``) found that hole: the writer's end-of-packet test off by one row passed both.
Here, for every writable quantity of the core: its values written (known), then a WRITE from
row 0 carrying one row more than the packet may (``min(chunk_rows, rows)``) -- the answer must
be BAD_LENGTH and the values read back unchanged. The case (``SPIKEFORGE_CASE``) is
``tb_core``'s.
"""

from __future__ import annotations

import random

import cocotb
import torch

from spikeforge.hw.params import CoreParams
from spikeforge.hw.protocol import WRITABLE, Opcode, Quantity, Status, to_words
from spikeforge.sim.harness import AxiTransport, Outcome, case_timeout_ms, load_case, start
from spikeforge.sim.session import CoreSession


def _values(s: CoreSession, q: Quantity, rng: random.Random) -> list[int]:
    outer, inner = s.shape(q)
    if q == Quantity.LFSR:
        return [rng.randrange(1, 1 << 32) for _ in range(outer * inner)]
    lo, hi = s.rules.value_range(q)
    return [rng.randint(lo, hi) for _ in range(outer * inner)]


@cocotb.test(timeout_time=case_timeout_ms({"steps": 5.0}), timeout_unit="ms")
async def a_write_one_row_too_long_is_refused(dut):
    case = load_case()
    params = CoreParams.from_dict(case["core"])
    rng = random.Random(case["seed"])
    await start(dut)
    async with Outcome(case, dut) as outcome:
        transport = AxiTransport(dut, stall=case["stall"], seed=case["seed"])
        s = CoreSession(params, transport.call)
        checked = []
        for q in WRITABLE:
            if q not in s.rules.shapes:
                continue
            outer, inner = s.shape(q)
            known = _values(s, q, rng)
            await s.write(q, torch.tensor(known).reshape(outer, inner))
            before = await s.read(q)
            rows = min(s.rules.chunk_rows(q), outer) + 1
            payload = to_words(_values(s, q, rng)[:inner] * rows)
            _, status = await transport.call(Opcode.WRITE, int(q), payload)
            if status != Status.BAD_LENGTH:
                raise AssertionError(f"WRITE {q.name} of {rows} rows answered {status!r}")
            after = await s.read(q)
            if not before.equal(after):
                raise AssertionError(f"the refused WRITE {q.name} of {rows} rows wrote values")
            checked.append(q.name)
        outcome.info["quantities"] = checked
