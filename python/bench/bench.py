"""Benchmarks of the Python bindings (not tests: nothing here asserts a time).

Runs, in one process and one run:

1. the bindings: `add_triple` calls/s from 1 and from N Python threads naming existing
   entities in four spellings, then the mean latency of a search;
2. the same workload on the library directly (`examples/python_baseline.rs`, built with
   `cargo build --release --example python_baseline` unless --baseline names a binary),
   so every figure is also printed as a ratio to Rust's;
3. a pure-Python store of the classic shape (sqlite3, one connection per thread via
   threading.local, WAL, synchronous=NORMAL, a process-wide RLock around find-or-create
   with an IntegrityError fallback) on the same N-thread workload: both throughputs,
   the ratio, and how many entities each ends with.

    maturin develop --release -m python/Cargo.toml   # or install a release wheel
    python python/bench/bench.py [--names 500] [--calls 4000] [--threads 8] [--searches 2000]

Targets (issue 13): writes ≥ 0.7 × Rust's; search overhead ≤ 50 µs per call.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from pathlib import Path
from typing import Callable, Optional

import cairn

ROOT = Path(__file__).resolve().parents[2]
PREDICATES = ["works with", "WORKS_WITH", "supplies", "competes with"]


def name(i: int) -> str:
    return f"Company {i:04d}"


def variant(k: int, text: str) -> str:
    """Spelling k (0..4) of text; the same four as the Rust baseline."""
    k %= 4
    if k == 0:
        return text
    if k == 1:
        return text.upper()
    if k == 2:
        return text.lower().replace(" ", "  ")
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text.lower())


def triple(names: int, t: int, i: int) -> tuple[str, str, str]:
    """Call i of thread t, as in examples/python_baseline.rs."""
    a = (i * 31 + t * 17) % names
    b = (a * 7 + 3 + i) % names
    if b == a:
        b = (b + 1) % names
    return variant(i + t, name(a)), PREDICATES[(i + t) % 4], variant(i + 2 * t + 1, name(b))


def timed_threads(threads: int, per_thread: int, call: Callable[[int, int], object]) -> float:
    """Calls per second of `call(t, i)` from `threads` threads, `per_thread` each."""
    start = threading.Barrier(threads + 1)

    def work(t: int) -> None:
        start.wait()
        for i in range(per_thread):
            call(t, i)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    began = time.perf_counter()
    for w in workers:
        w.join()
    return threads * per_thread / (time.perf_counter() - began)


def prepared(names: int) -> cairn.Memory:
    memory = cairn.Memory.ephemeral()
    for i in range(names):
        memory.ensure_entity(name(i))
    return memory


def bindings(args: argparse.Namespace) -> dict[str, float]:
    names = args.names

    def writer(memory: cairn.Memory) -> Callable[[int, int], object]:
        def call(t: int, i: int) -> object:
            s, p, o = triple(names, t, i)
            return memory.add_triple(s, p, o)

        return call

    single = timed_threads(1, args.calls, writer(prepared(names)))
    memory = prepared(names)
    parallel = timed_threads(args.threads, args.calls // args.threads, writer(memory))
    entities = memory.stats()["entities"]
    memory.sync()
    out = {"writes_1": single, "writes_n": parallel, "entities": entities}
    for label, provenance in [("search_us", False), ("search_prov_us", True)]:
        began = time.perf_counter()
        for i in range(args.searches):
            memory.search(f"company {(i * 13) % names:04d} works", provenance=provenance)
        out[label] = (time.perf_counter() - began) * 1e6 / args.searches
    return out


def baseline(args: argparse.Namespace) -> dict[str, float]:
    binary: Optional[str] = args.baseline
    if binary is None:
        subprocess.run(
            ["cargo", "build", "--release", "--quiet", "--example", "python_baseline"],
            cwd=ROOT,
            check=True,
        )
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        binary = str(target / "release" / "examples" / "python_baseline")
    done = subprocess.run(
        [
            binary,
            "--names", str(args.names),
            "--calls", str(args.calls),
            "--threads", str(args.threads),
            "--searches", str(args.searches),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout)


# ----- the classic pure-Python store -----------------------------------------------------

SPACE = re.compile(r"\s+")


def key(text: str) -> str:
    """NFKC, case fold, white space collapsed: what such stores usually do."""
    return SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def predicate_key(text: str) -> str:
    return key(text.replace("_", " ").replace("-", " "))


class ClassicStore:
    """sqlite3 with one connection per thread, WAL, synchronous=NORMAL, and a
    process-wide RLock around find-or-create with an IntegrityError fallback."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.local = threading.local()
        self.lock = threading.RLock()
        conn = self.conn()
        conn.executescript(
            """
            PRAGMA journal_mode=WAL;
            CREATE TABLE IF NOT EXISTS entity (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS alias (key TEXT PRIMARY KEY, entity_id INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS relation (
                id INTEGER PRIMARY KEY, subject INTEGER, predicate TEXT, predicate_key TEXT,
                object INTEGER, mentions INTEGER NOT NULL DEFAULT 1,
                UNIQUE (subject, predicate_key, object));
            """
        )

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=NORMAL")
            self.local.conn = conn
        return conn

    def find_or_create(self, text: str) -> int:
        k = key(text)
        conn = self.conn()
        row = conn.execute("SELECT entity_id FROM alias WHERE key = ?", (k,)).fetchone()
        if row:
            return int(row[0])
        with self.lock:
            row = conn.execute("SELECT entity_id FROM alias WHERE key = ?", (k,)).fetchone()
            if row:
                return int(row[0])
            try:
                conn.execute("BEGIN IMMEDIATE")
                cur = conn.execute("INSERT INTO entity (name) VALUES (?)", (text.strip(),))
                conn.execute("INSERT INTO alias (key, entity_id) VALUES (?, ?)", (k, cur.lastrowid))
                conn.execute("COMMIT")
                return int(cur.lastrowid or 0)
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK")
                row = conn.execute("SELECT entity_id FROM alias WHERE key = ?", (k,)).fetchone()
                return int(row[0])

    def add_triple(self, subject: str, predicate: str, obj: str) -> None:
        s, o = self.find_or_create(subject), self.find_or_create(obj)
        conn = self.conn()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO relation (subject, predicate, predicate_key, object) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (subject, predicate_key, object) DO UPDATE SET mentions = mentions + 1",
            (s, predicate, predicate_key(predicate), o),
        )
        conn.execute("COMMIT")

    def entities(self) -> int:
        return int(self.conn().execute("SELECT count(*) FROM entity").fetchone()[0])


def classic(args: argparse.Namespace) -> dict[str, float]:
    names = args.names
    with tempfile.TemporaryDirectory() as tmp:
        store = ClassicStore(os.path.join(tmp, "classic.db"))
        for i in range(names):
            store.find_or_create(name(i))

        def call(t: int, i: int) -> object:
            s, p, o = triple(names, t, i)
            store.add_triple(s, p, o)
            return None

        rate = timed_threads(args.threads, args.calls // args.threads, call)
        return {"writes_n": rate, "entities": store.entities()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=500)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--searches", type=int, default=2000)
    parser.add_argument("--baseline", help="a built examples/python_baseline binary")
    args = parser.parse_args()

    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
        f"cairn {cairn.__version__}; names {args.names}, calls {args.calls}, "
        f"threads {args.threads}, searches {args.searches}"
    )
    rust = baseline(args)
    py = bindings(args)
    old = classic(args)
    n = args.threads
    print(f"add_triple, 1 thread:   python {py['writes_1']:9.0f}/s  rust {rust['writes_1']:9.0f}/s  ratio {py['writes_1'] / rust['writes_1']:.2f}")
    print(f"add_triple, {n} threads:  python {py['writes_n']:9.0f}/s  rust {rust['writes_n']:9.0f}/s  ratio {py['writes_n'] / rust['writes_n']:.2f}")
    print(f"search, mean:           python {py['search_us']:9.1f} µs rust {rust['search_us']:9.1f} µs overhead {py['search_us'] - rust['search_us']:+.1f} µs")
    print(f"search + provenance:    python {py['search_prov_us']:9.1f} µs (Hit.agent/source/written_at filled)")
    print(
        f"classic pure-Python store, {n} threads: {old['writes_n']:9.0f}/s, ends with {old['entities']} entities; "
        f"cairn {py['writes_n']:.0f}/s with {py['entities']} entities: ratio {py['writes_n'] / old['writes_n']:.2f}"
    )
    print(f"entities: rust {rust['entities']}, python {py['entities']}, classic {old['entities']} (expected {args.names})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
