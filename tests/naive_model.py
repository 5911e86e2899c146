"""A second, deliberately naive implementation of docs/arithmetic.md in plain Python ints.

Scalar loops, one value at a time, written from the document and sharing no code with
``sw/golden.py`` (only the config object). Tests compare the vectorized golden model to it.
"""

from __future__ import annotations

TAPS = 0x80200003
M32 = 0xFFFFFFFF


def sat(x: int, bits: int) -> int:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return lo if x < lo else hi if x > hi else x


def rnd(x: int, s: int) -> int:
    return x if s == 0 else (x + (1 << (s - 1))) >> s


def leak(x: int, k: int) -> int:
    return x - (x >> k)


def lowbias32(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def seed(*words: int) -> int:
    h = 0
    for w in words:
        h = lowbias32(h ^ w)
    return h or 1


def draw(state: int, bits: int) -> tuple[int, int]:
    for _ in range(bits):
        state = (state >> 1) ^ (TAPS if state & 1 else 0)
    return state & ((1 << bits) - 1), state


def rate_encode(cfg, q: list[int], key: int) -> list[list[int]]:
    spikes = [[0] * len(q) for _ in range(cfg.timesteps)]
    for i, qi in enumerate(q):
        s = seed(cfg.encoder_seed, key, i)
        for t in range(cfg.timesteps):
            r, s = draw(s, cfg.in_bits)
            spikes[t][i] = int(r < qi)
    return spikes


class NaiveNet:
    def __init__(self, cfg, weights: list[list[list[int]]]):
        self.cfg = cfg
        self.wm = [[row[:] for row in w] for w in weights]
        self.rows = [
            [seed(cfg.lfsr_seed, layer, j) for j in range(len(w))]
            for layer, w in enumerate(weights)
        ]
        self.acc = [[[0] * len(w[0]) for _ in w] for w in weights]

    def w(self, layer: int) -> list[list[int]]:
        return [[v >> self.cfg.frac_bits for v in row] for row in self.wm[layer]]

    def forward(self, x):
        """x: [T][n_in] spikes, or [n_in] intensities (direct). Returns per-layer (u, s)."""
        cfg = self.cfg
        out = []
        for layer in range(len(self.wm)):
            w = self.w(layer)
            n_out = len(w)
            u = [[0] * n_out for _ in range(cfg.timesteps)]
            s = [[0] * n_out for _ in range(cfg.timesteps)]
            up, sp = [0] * n_out, [0] * n_out
            for t in range(cfg.timesteps):
                for j in range(n_out):
                    if layer == 0 and cfg.encoder == "direct":
                        cur = sum(w[j][i] * x[i] for i in range(len(x))) >> cfg.in_bits
                    else:
                        cur = sum(w[j][i] for i in range(len(x[t])) if x[t][i])
                    if cfg.reset == "subtract":
                        pre = leak(up[j], cfg.leak_shift) + cur - cfg.theta * sp[j]
                    else:
                        pre = (0 if sp[j] else leak(up[j], cfg.leak_shift)) + cur
                    u[t][j] = sat(pre, cfg.v_bits)
                    s[t][j] = int(u[t][j] >= cfg.theta)
                up, sp = u[t], s[t]
            out.append((x, u, s))
            x = s
        return out

    def output_error(self, s_out, label: int):
        cfg = self.cfg
        n = len(s_out[0])
        e = []
        for j in range(n):
            c = sum(s_out[t][j] for t in range(cfg.timesteps))
            y = cfg.target_hi if j == label else cfg.target_lo
            e.append(sat((c - y) * (1 << cfg.err_shift), cfg.g_bits))
        return [e[:] for _ in range(cfg.timesteps)]

    def backward(self, fwd, e):
        """Returns per-layer (delta, e_prev) and accumulates gradients."""
        cfg = self.cfg
        res = [None] * len(self.wm)
        width = 1 << cfg.surrogate_shift
        for layer in reversed(range(len(self.wm))):
            x, u, s = fwd[layer]
            w = self.w(layer)
            n_out, n_in = len(w), len(w[0])
            delta = [[0] * n_out for _ in range(cfg.timesteps)]
            for j in range(n_out):
                nxt = 0
                for t in reversed(range(cfg.timesteps)):
                    d = abs(u[t][j] - cfg.theta)
                    if cfg.surrogate == "boxcar":
                        g = e[t][j] if d < width else 0
                    else:
                        g = rnd(e[t][j] * max(0, width - d), cfg.surrogate_shift)
                    if cfg.bptt == "bptt" and t < cfg.timesteps - 1:
                        temporal = leak(nxt, cfg.leak_shift)
                        if cfg.reset == "zero" and s[t][j]:
                            temporal = 0
                        g += temporal
                    nxt = sat(g, cfg.g_bits)
                    delta[t][j] = nxt
            e_prev = [
                [
                    sat(
                        rnd(sum(w[j][i] * delta[t][j] for j in range(n_out)), cfg.bp_shift),
                        cfg.g_bits,
                    )
                    for i in range(n_in)
                ]
                for t in range(cfg.timesteps)
            ]
            acc = self.acc[layer]
            for t in reversed(range(cfg.timesteps)):
                for j in range(n_out):
                    for i in range(n_in):
                        xi = x[i] if (layer == 0 and cfg.encoder == "direct") else x[t][i]
                        acc[j][i] = sat(acc[j][i] + delta[t][j] * xi, cfg.acc_bits)
            res[layer] = (delta, e_prev, [row[:] for row in acc])
            e = e_prev
        return res

    def update(self):
        cfg = self.cfg
        for layer, wm in enumerate(self.wm):
            shift = cfg.lr_shift - cfg.frac_bits
            if layer == 0 and cfg.encoder == "direct":
                shift += cfg.in_bits
            for j, row in enumerate(wm):
                for i in range(len(row)):
                    g = self.acc[layer][j][i]
                    if cfg.rounding == "stochastic" and shift > 0:
                        r, self.rows[layer][j] = draw(self.rows[layer][j], shift)
                        step = (g + r) >> shift
                    else:
                        step = rnd(g, shift)
                    row[i] = sat(row[i] - step, cfg.w_bits + cfg.frac_bits)
                    self.acc[layer][j][i] = 0
