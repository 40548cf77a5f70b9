"""Many Python threads and processes writing one memory file: one entity per name.

Every call releases the GIL, so the threads really run in the library at once; the
processes race through SQLite's locks and the UNIQUE fallback of find-or-create.
"""

from __future__ import annotations

import multiprocessing
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import cairn
from conftest import variants

NAMES = [f"Acme Corp {i}" for i in range(40)] + ["Acme Corp", "Widget Inc", "Straße Gmbh"]
THREADS = 8
PROCESSES = 4


def write_everything(memory: cairn.Memory, seed: int) -> None:
    """Each name in every spelling, as entities and as the ends of triples, in an order
    of its own per writer."""
    rng = random.Random(seed)
    work = [(name, spelling) for name in NAMES for spelling in variants(name)]
    rng.shuffle(work)
    for i, (name, spelling) in enumerate(work):
        if i % 2:
            memory.ensure_entity(spelling)
        else:
            other = rng.choice(variants(NAMES[(NAMES.index(name) + 1) % len(NAMES)]))
            memory.add_triple(spelling, rng.choice(["works with", "WORKS_WITH"]), other)


def check_one_entity_per_name(memory: cairn.Memory) -> None:
    ids = set()
    for name in NAMES:
        found = {memory.resolve(spelling) for spelling in variants(name)}
        assert len(found) == 1 and None not in found, (name, found)
        ids |= found
    assert len(ids) == len(NAMES)
    assert memory.stats()["entities"] == len(NAMES)
    # One relation per (subject, predicate key, object) whatever the spellings.
    assert memory.stats()["relations"] <= len(NAMES)
    assert memory.verify(full=True).ok


def test_threads_create_one_entity_per_name(path: Path) -> None:
    memory = cairn.Memory(path)
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        try:
            start.wait()
            write_everything(memory, seed)
        except BaseException as e:  # reported by the assertion below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    check_one_entity_per_name(memory)


def process_writer(path: str, seed: int, start) -> None:  # type: ignore[no-untyped-def]
    memory = cairn.Memory(path, busy_timeout=30.0)
    start.wait()
    write_everything(memory, seed)


def test_processes_create_one_entity_per_name(path: Path) -> None:
    cairn.Memory(path)  # create the file before the race
    # spawn, not fork: the parent runs library threads (the indexer) a fork would copy
    # mid-flight.
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    workers = [
        ctx.Process(target=process_writer, args=(str(path), seed, start))
        for seed in range(PROCESSES)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    check_one_entity_per_name(cairn.Memory(path))


def test_a_blocked_write_releases_the_gil(path: Path) -> None:
    """A write waiting for SQLite's write lock must not hold the GIL: this thread has
    to run Python code (and have the lock released) while the write waits. If the write
    held the GIL, it would wait out its busy budget and fail with BusyError.

    The lock is held by another process: POSIX file locks do not conflict within one
    process, so Python's own sqlite3 module (a second copy of SQLite) in this process
    would not block cairn at all (see docs/python.md)."""
    memory = cairn.Memory(path, busy_timeout=60.0)
    memory.ensure_entity("warm up")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    outcome: list[object] = []

    def write() -> None:
        try:
            outcome.append(memory.add_triple("Ann", "knows", "Bob"))
        except BaseException as e:
            outcome.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(0.3)  # not a timing assertion: the write cannot finish before COMMIT
    assert outcome == [], "the write finished while another process held the lock"
    holder.stdin.write("commit\n")
    holder.stdin.flush()
    assert holder.wait(timeout=60) == 0
    writer.join()
    assert len(outcome) == 1 and isinstance(outcome[0], int), outcome
    assert memory.resolve("ann") is not None


# Takes SQLite's write lock on the file argv[1], says so, commits when told.
HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("COMMIT")
"""
