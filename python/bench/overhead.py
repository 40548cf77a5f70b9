"""Upper bounds on the bindings' per-search cost, in one process (no cross-process noise).

fixed: a whole resolve() call from Python (argument conversion, GIL release and
reacquire, the result) -- it includes resolve's own Rust work, so it bounds the fixed
per-call cost from above. per hit: (search limit 10 - search limit 1) / 9 -- it includes
the Rust work for nine more hits, so it bounds the cost of turning one Hit into a Python
object from above. Alternating rounds; medians printed.
"""
import statistics, sys, time
import cairn

m = cairn.Memory.ephemeral()
for i in range(500):
    m.add_triple(f"Company {i:04d}", "works with", f"Company {(i + 1) % 500:04d}")
m.sync()

def per_call(f, n):
    began = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - began) / n * 1e6

rounds = {"resolve": [], "search10": [], "search1": []}
for r in range(15):
    rounds["resolve"].append(per_call(lambda: m.resolve("Company 0001"), 5000))
    rounds["search10"].append(per_call(lambda: m.search("company 0001 works", limit=10, provenance=False), 500))
    rounds["search1"].append(per_call(lambda: m.search("company 0001 works", limit=1, provenance=False), 500))
med = {k: statistics.median(v) for k, v in rounds.items()}
hits = len(m.search("company 0001 works", limit=10, provenance=False))
per_hit = (med["search10"] - med["search1"]) / max(hits - 1, 1)
print(f"resolve call: {med['resolve']:.1f} us (median of 15 rounds x 5000)")
print(f"search limit 10 ({hits} hits): {med['search10']:.1f} us; limit 1: {med['search1']:.1f} us")
print(f"per-hit bound: {per_hit:.1f} us; search overhead bound: {med['resolve'] + hits * per_hit:.1f} us")
