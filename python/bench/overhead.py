"""The bindings' cost per search, measured in one process (no cross-process noise).

Each round times `Memory.search` from Python, then the same library search run inside
Rust by `Memory._search_rust_ns` (same options, same memory, same warm caches, the
same provenance read when `provenance=True`). The difference is what the bindings
add per call: argument conversion, options, releasing and retaking the GIL, and the
`Hit` objects. Rounds alternate; medians of the per-round differences are printed, then
the same call by call (each Python search paired with one library search right after).

    python python/bench/overhead.py [--rounds 30] [--calls 500]
"""
import argparse, statistics, time
import cairn

parser = argparse.ArgumentParser()
parser.add_argument("--rounds", type=int, default=30)
parser.add_argument("--calls", type=int, default=500)
parser.add_argument("--names", type=int, default=500)
args = parser.parse_args()

m = cairn.Memory.ephemeral()
for i in range(args.names):
    m.add_triple(f"Company {i:04d}", "works with", f"Company {(i + 1) % args.names:04d}")
m.sync()

QUERY = "company 0001 works"


def python_us(limit, provenance):
    began = time.perf_counter()
    for _ in range(args.calls):
        m.search(QUERY, limit=limit, provenance=provenance)
    return (time.perf_counter() - began) / args.calls * 1e6


def rust_us(limit, provenance):
    return m._search_rust_ns(QUERY, limit=limit, repeat=args.calls, provenance=provenance) / 1e3


cases = [(10, False), (10, True), (1, False)]
for limit, provenance in cases:  # warm-up
    python_us(limit, provenance), rust_us(limit, provenance)
diffs = {c: [] for c in cases}
rust = {c: [] for c in cases}
for r in range(args.rounds):
    for case in cases:
        # Alternate which side goes first, so drift does not favour one.
        if r % 2:
            p, q = python_us(*case), rust_us(*case)
        else:
            q, p = rust_us(*case), python_us(*case)
        diffs[case].append(p - q)
        rust[case].append(q)

# The same, call by call: each Python search is paired with one library search timed
# inside Rust right after it, so load that drifts over milliseconds cancels out.
pairs = {c: [] for c in cases}
for case in cases:
    limit, provenance = case
    for _ in range(args.rounds * args.calls // 10):
        began = time.perf_counter_ns()
        m.search(QUERY, limit=limit, provenance=provenance)
        python_ns = time.perf_counter_ns() - began
        pairs[case].append((python_ns - m._search_rust_ns(QUERY, limit=limit, provenance=provenance)) / 1e3)

for case in cases:
    limit, provenance = case
    hits = len(m.search(QUERY, limit=limit, provenance=provenance))
    d = sorted(diffs[case])
    print(
        f"limit {limit:2d} ({hits:2d} hits), provenance={str(provenance):5s}: "
        f"library search {statistics.median(rust[case]):7.1f} us; bindings add "
        f"median {statistics.median(d):5.1f} us, mean {statistics.mean(d):5.1f} +/- "
        f"{statistics.stdev(d) / len(d) ** 0.5:4.1f} (stderr; min {d[0]:6.1f}, max {d[-1]:5.1f}; "
        f"{args.rounds} rounds x {args.calls} calls)"
    )
    d = pairs[case]
    print(
        f"    call by call: bindings add median {statistics.median(d):5.1f} us, mean "
        f"{statistics.mean(d):5.1f} +/- {statistics.stdev(d) / len(d) ** 0.5:4.1f} (stderr; {len(d)} pairs)"
    )
