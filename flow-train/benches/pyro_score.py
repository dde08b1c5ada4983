"""Pyro's `log_prob` of the tutorial coupling on the rows of a CSV, for `benches/score.rs`.

Usage: python3 pyro_score.py ROWS.CSV

Builds the coupling of Pyro's normalizing-flows tutorial, `spline_coupling(2, count_bins=16)`
(hidden layers [20, 20], linear order, 1,846 parameters) on a standard Normal base. Its
weights are torch's initial ones: the cost of `log_prob` does not depend on their values.
The rows are read once (float32, as the tutorial's tensors), then scored under
`torch.no_grad()` on one thread and on torch's default thread count, two ways each: in one
call, and in calls of 10,000 rows (often faster per row: the tensors stay in cache). Each
call gets a fresh copy of its rows: a Pyro transform caches its last input and output, and
scoring the same tensor object again would return the cached inverse without computing it.

Prints one line per thread count: `pyro threads N us_per_row X` with the faster of the two
ways (the seconds for all rows divided by the rows), and the two ways on the following
`pyro threads N way ...` lines.
"""

import sys
import time

import numpy as np
import torch
import pyro.distributions as dist
import pyro.distributions.transforms as T

CHUNK = 10_000


def main():
    rows = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, dtype=np.float32)
    x = torch.from_numpy(rows)
    torch.manual_seed(0)
    base = dist.Normal(torch.zeros(2), torch.ones(2))
    flow = dist.TransformedDistribution(base, [T.spline_coupling(2, count_bins=16)])
    n = x.shape[0]
    default_threads = torch.get_num_threads()
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        ways = {}
        with torch.no_grad():
            t0 = time.perf_counter()
            total = flow.log_prob(x.clone()).sum().item()
            ways["one call"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            chunked = 0.0
            for i in range(0, n, CHUNK):
                chunked += flow.log_prob(x[i : i + CHUNK].clone()).sum().item()
            ways[f"calls of {CHUNK}"] = time.perf_counter() - t0
        if not (np.isfinite(total) and np.isfinite(chunked)):
            sys.exit("pyro_score.py: a log-density is not finite")
        best = min(ways.values())
        print(f"pyro threads {threads} us_per_row {1e6 * best / n:.4f}")
        for way, s in ways.items():
            print(f"pyro threads {threads} way {way}: {1e6 * s / n:.4f} us per row")


if __name__ == "__main__":
    main()
