//! The process's background workers: a few threads shared by every open memory, instead
//! of threads of each memory's own.
//!
//! A memory registers one [`Slot`] per kind of background work (following the change
//! log, writing derived rows). A slot is queued when its memory has work (a local commit,
//! rows to write, a caller waiting for the index) or when the poll interval its last turn
//! asked for has passed; a worker then runs one turn of it, which does a bounded amount
//! of work and says when it wants the next ([`Next`]). Each slot belongs to one worker
//! (assigned round-robin), so one memory's turns never run on two threads at once and a
//! memory has at most one connection per kind of work.
//!
//! Slots hold their memory weakly: nothing here keeps a closed memory alive. Closing a
//! memory ([`Slot::close`]) waits only for a turn that is running, never for queued
//! work: what was not indexed yet is still in the change log, and the next open takes
//! it from there.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::Result;

/// How long a slot whose turn panicked waits before its next one.
const AFTER_PANIC: Duration = Duration::from_millis(100);

/// The workers that follow every memory's change log (index batches, reloads, the idle
/// checkpoint, the health check).
pub(crate) static INDEXERS: Pool = Pool::new("cairn-indexer");
/// The workers that write derived rows (mention links, vectors) to the files.
pub(crate) static DERIVERS: Pool = Pool::new("cairn-derived");

/// What a turn wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing until somebody [nudges](Slot::nudge) the slot.
    Idle,
    /// Another turn as soon as the worker gets to it (the turn stopped with work left,
    /// to let other memories' turns run in between).
    Now,
    /// Another turn after this long (a poll interval).
    After(Duration),
}

/// One turn of a slot's work.
pub(crate) type Turn = Box<dyn Fn() -> Next + Send + Sync>;

/// A set of worker threads, started when the first slot is registered and kept for the
/// life of the process.
pub(crate) struct Pool {
    name: &'static str,
    workers: Mutex<Vec<Arc<Worker>>>,
    next: AtomicUsize,
}

impl Pool {
    const fn new(name: &'static str) -> Pool {
        Pool {
            name,
            workers: Mutex::new(Vec::new()),
            next: AtomicUsize::new(0),
        }
    }

    /// The worker the next slot runs on (round-robin), starting the workers if this is
    /// the first.
    pub(crate) fn worker(&self) -> Result<Arc<Worker>> {
        let mut workers = self.workers.lock();
        while workers.len() < size() {
            let worker = Arc::new(Worker::default());
            let runs = Arc::clone(&worker);
            let spawned = std::thread::Builder::new()
                .name(self.name.to_owned())
                .spawn(move || runs.work());
            match spawned {
                Ok(_) => workers.push(worker),
                // Fewer workers than wanted still do all the work, only slower.
                Err(_) if !workers.is_empty() => break,
                Err(e) => return Err(e.into()),
            }
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed) % workers.len();
        Ok(Arc::clone(&workers[n]))
    }
}

/// Workers per pool: two, or one on a single core (the work is mostly waiting for
/// `fsync`s and SQLite, and memories are independent, so two keep a slow commit of one
/// memory from holding up all others).
fn size() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 2)
}

/// One worker thread and its queue.
#[derive(Default)]
pub(crate) struct Worker {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    ready: VecDeque<Arc<Slot>>,
    timers: BinaryHeap<Timer>,
    /// Orders timers due at the same instant.
    counter: u64,
}

/// A slot's next poll. Stale once the slot's generation moved on (a later turn asked
/// for another time, or for none).
struct Timer {
    at: Instant,
    order: u64,
    slot: Arc<Slot>,
    generation: u64,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl Eq for Timer {}

impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timer {
    /// Reversed: the heap's top is the earliest timer.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl Worker {
    fn work(&self) {
        loop {
            let slot = self.next_due();
            slot.run();
        }
    }

    /// Waits for the next slot to run: a queued one, or one whose timer is due.
    fn next_due(&self) -> Arc<Slot> {
        let mut queue = self.queue.lock();
        loop {
            let now = Instant::now();
            while queue.timers.peek().is_some_and(|t| t.at <= now) {
                let Some(timer) = queue.timers.pop() else {
                    break;
                };
                if timer.slot.due(timer.generation) {
                    queue.ready.push_back(timer.slot);
                }
            }
            if let Some(slot) = queue.ready.pop_front() {
                return slot;
            }
            match queue.timers.peek().map(|t| t.at) {
                Some(at) => {
                    self.wake.wait_until(&mut queue, at);
                }
                None => self.wake.wait(&mut queue),
            }
        }
    }

    fn push_ready(&self, slot: Arc<Slot>) {
        self.queue.lock().ready.push_back(slot);
        self.wake.notify_one();
    }

    fn push_timer(&self, slot: Arc<Slot>, at: Instant, generation: u64) {
        let mut queue = self.queue.lock();
        queue.counter += 1;
        let order = queue.counter;
        queue.timers.push(Timer {
            at,
            order,
            slot,
            generation,
        });
        drop(queue);
        self.wake.notify_one();
    }
}

/// One memory's registration for one kind of background work.
pub(crate) struct Slot {
    turn: Turn,
    worker: Arc<Worker>,
    state: Mutex<SlotState>,
    /// Signalled when a turn ends (for [`Slot::close`]).
    ended: Condvar,
}

#[derive(Default)]
struct SlotState {
    /// In the worker's ready queue.
    queued: bool,
    /// A turn is running.
    running: bool,
    /// The memory closed: no turn runs any more.
    closed: bool,
    /// Which timer is current (see [`Timer`]).
    generation: u64,
}

impl Slot {
    /// A slot running `turn` on `worker`; nothing runs until it is nudged.
    pub(crate) fn new(worker: Arc<Worker>, turn: Turn) -> Arc<Slot> {
        Arc::new(Slot {
            turn,
            worker,
            state: Mutex::new(SlotState::default()),
            ended: Condvar::new(),
        })
    }

    /// Queues a turn (if none is queued already).
    pub(crate) fn nudge(self: &Arc<Self>) {
        let mut state = self.state.lock();
        if state.queued || state.closed {
            return;
        }
        state.queued = true;
        drop(state);
        self.worker.push_ready(Arc::clone(self));
    }

    /// No turn runs after this returns; waits for one that is running.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        while state.running {
            self.ended.wait(&mut state);
        }
    }

    /// Whether a timer of `generation` should queue the slot (called under the worker's
    /// queue lock; the slot's own lock is never held while taking that one).
    fn due(&self, generation: u64) -> bool {
        let mut state = self.state.lock();
        if state.closed || state.queued || state.generation != generation {
            return false;
        }
        state.queued = true;
        true
    }

    fn run(self: Arc<Self>) {
        {
            let mut state = self.state.lock();
            state.queued = false;
            if state.closed {
                return;
            }
            state.running = true;
        }
        // A panic in one memory's turn must not take the worker, and with it every other
        // memory's indexing, down.
        let next = std::panic::catch_unwind(AssertUnwindSafe(|| (self.turn)()))
            .unwrap_or(Next::After(AFTER_PANIC));
        let mut state = self.state.lock();
        state.running = false;
        self.ended.notify_all();
        if state.closed {
            return;
        }
        match next {
            Next::Idle => state.generation += 1,
            Next::Now => {
                if !state.queued {
                    state.queued = true;
                    drop(state);
                    self.worker.push_ready(Arc::clone(&self));
                }
            }
            Next::After(delay) => {
                state.generation += 1;
                let generation = state.generation;
                drop(state);
                let worker = Arc::clone(&self.worker);
                worker.push_timer(self, Instant::now() + delay, generation);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    fn counting(n: &Arc<AtomicU32>, next: Next) -> Turn {
        let n = Arc::clone(n);
        Box::new(move || {
            n.fetch_add(1, Ordering::SeqCst);
            next
        })
    }

    fn wait_until(mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "condition not reached");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_nudged_slot_runs_once_per_nudge_and_not_after_close() {
        let n = Arc::new(AtomicU32::new(0));
        let slot = Slot::new(INDEXERS.worker().unwrap(), counting(&n, Next::Idle));
        slot.nudge();
        wait_until(|| n.load(Ordering::SeqCst) == 1);
        slot.nudge();
        wait_until(|| n.load(Ordering::SeqCst) == 2);
        slot.close();
        slot.nudge();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(n.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_polling_slot_keeps_running_until_closed() {
        let n = Arc::new(AtomicU32::new(0));
        let slot = Slot::new(
            INDEXERS.worker().unwrap(),
            counting(&n, Next::After(Duration::from_millis(1))),
        );
        slot.nudge();
        wait_until(|| n.load(Ordering::SeqCst) >= 5);
        slot.close();
        let after = n.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(n.load(Ordering::SeqCst), after);
    }

    #[test]
    fn a_panicking_turn_leaves_the_worker_running() {
        let worker = INDEXERS.worker().unwrap();
        let bad = Slot::new(Arc::clone(&worker), Box::new(|| panic!("a bad turn")));
        bad.nudge();
        let n = Arc::new(AtomicU32::new(0));
        let good = Slot::new(worker, counting(&n, Next::Idle));
        good.nudge();
        wait_until(|| n.load(Ordering::SeqCst) == 1);
        bad.close();
        good.close();
    }
}
