#!/usr/bin/env python3
"""Fits the device cost model's coefficients (flow-train/src/cost.rs) to the measured table.

Usage: scripts/fit-cost-model.py TABLE.tsv [--markdown]

TABLE.tsv is what `scripts/measure-device-cost.sh` writes (the test `measure_cost_table` of
tests/tests/cost_model.rs): one row per model, its features (`name=value` pairs), the model
file's size and the harness's figures. Each of the three figures is fitted by least squares
on relative errors (rows weighted by 1/measured^2), so that small models count as much as
large ones; prints the coefficients and every row's relative error (with --markdown, also the
table of docs/device-cost.md). Standard library only.
"""
import sys

INSTR = ["one", "chains", "affine_dims", "exp_dims", "permute_dims", "tabled_dims",
         "tabled_bins", "computed_dims", "computed_bins", "macs", "hidden_units", "conditional"]
FLASH = ["one", "joint", "conditional", "affine", "exp", "spline", "coupling", "permute",
         "cond_spline", "quadratic"]
RAM = ["one", "layers_x_chains", "H", "K", "D", "joint", "conditional", "affine", "exp",
       "spline", "coupling", "permute", "cond_spline", "quadratic"]


def solve(a, b):
    """Solves a x = b (Gaussian elimination with partial pivoting)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-12:
            raise SystemExit(f"singular: feature {c} is not determined by the table")
        for r in range(n):
            if r != c:
                f = m[r][c] / m[c][c]
                m[r] = [x - f * y for x, y in zip(m[r], m[c])]
    return [m[i][n] / m[i][i] for i in range(n)]


def fit(rows, names, target, offset):
    """Weighted least squares of `target - offset` on `names`; returns the coefficients."""
    k = len(names)
    ata = [[0.0] * k for _ in range(k)]
    atb = [0.0] * k
    for r in rows:
        x = [r[n] for n in names]
        y = r[target] - offset(r)
        w = 1.0 / r[target] ** 2
        for i in range(k):
            atb[i] += w * x[i] * y
            for j in range(k):
                ata[i][j] += w * x[i] * x[j]
    return solve(ata, atb)


def main():
    lines = open(sys.argv[1]).read().splitlines()
    head = lines[0].split("\t")
    rows = []
    for line in lines[1:]:
        cells = dict(zip(head, line.split("\t")))
        r = {k: float(v) for k, v in (p.split("=") for p in cells["features"].split())}
        for k in ("file_bytes", "instructions", "flash", "ram"):
            r[k] = float(cells[k])
        r["label"] = cells["label"]
        r["one"] = 1.0
        r["layers_x_chains"] = r["L"] * r["chains"]
        rows.append(r)
    worst = {}
    preds = {}
    for what, names, offset in [
        ("instructions", INSTR, lambda r: 0.0),
        ("flash", FLASH, lambda r: r["file_bytes"] + r["table_bytes"]),
        ("ram", RAM, lambda r: 0.0),
    ]:
        c = fit(rows, names, what, offset)
        print(f"# {what}")
        for n, v in zip(names, c):
            print(f"{n:>16} {v:12.3f}")
        errs = []
        for r in rows:
            pred = offset(r) + sum(r[n] * v for n, v in zip(names, c))
            errs.append((r["label"], r[what], pred, pred / r[what] - 1))
        for label, got, pred, e in errs:
            print(f"  {label:<40} measured {got:8.0f} predicted {pred:8.0f} {100 * e:+6.1f} %")
        worst[what] = max(abs(e[3]) for e in errs)
        preds[what] = [e[2] for e in errs]
    if "--markdown" in sys.argv:
        print("| model | file B | instructions (predicted, error) | flash B (predicted, error) "
              "| RAM B (predicted, error) |")
        print("|---|---:|---:|---:|---:|")
        for i, r in enumerate(rows):
            cell = lambda w: (f"{r[w]:,.0f} ({preds[w][i]:,.0f}, "
                              f"{100 * (preds[w][i] / r[w] - 1):+.1f} %)")
            print(f"| `{r['label']}` | {r['file_bytes']:,.0f} | {cell('instructions')} | "
                  f"{cell('flash')} | {cell('ram')} |")
    print("# worst relative error: " + ", ".join(f"{k} {100 * v:.1f} %" for k, v in worst.items()))


if __name__ == "__main__":
    main()
