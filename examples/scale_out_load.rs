//! The write load of the tenant-move drill (`scripts/scale-out-drill.sh`,
//! `docs/scale-out.md`): two or more "app servers" in one process, each a
//! [`Tenants`] directory, and a router that sends every write to the server the routing
//! table names.
//!
//! ```sh
//! cargo run --example scale_out_load -- create N NAME=DIR    # make t000.. on one server
//! cargo run --example scale_out_load -- run ROUTES ACKS THREADS RATE NAME=DIR...
//! ```
//!
//! `create` makes tenants `t000`..`t<N-1>` with the replicated checkpoint policy and exits
//! (before Litestream starts, as `docs/litestream.md` says to).
//!
//! `run` writes until told to stop. `ROUTES` is the routing table, one `<tenant>
//! <server>` per line; a router thread re-reads it when it changes (the operator
//! replaces it with a rename). `THREADS` writer threads share the tenants; `RATE` is the
//! total writes per second (0: as fast as commits go). Write `n` of a tenant is one
//! [`Memory::record`] with idempotency key `w-<n>`, so a repeated write is found, not
//! doubled. Every outcome goes to `ACKS`, one line each:
//!
//! ```text
//! ack <tenant> <n> <unix ms> <server>
//! refused <tenant> <n> <unix ms> <server> <reason>      (the same n is tried again later)
//! ```
//!
//! A write is refused, not lost, when the server fences the tenant ([`Error::InUse`]
//! during a drain), when the tenant moved away ([`Error::Moved`]), or when the routed
//! server has no such tenant ([`Tenants::get_existing`]: a router never creates a tenant
//! by writing to it).
//!
//! Standard input is the servers' control channel, one command a line, one reply each:
//!
//! ```text
//! drain ID        -> drained ID SERVER LAST_SEQ LAST_ACKED   (Tenants::drain on ID's server)
//! moved ID TO     -> removed ID      (Drained::moved: the old copy goes, a tombstone stays)
//! abort ID        -> resumed ID      (the drain dropped: the old server serves ID again)
//! stop            -> stopped ACKED REFUSED, then exit
//! ```
//!
//! A failed command replies `error ID message`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, LineWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cairn::{Batch, CheckpointPolicy, Drained, Durability, Episode, Error, Options, Tenants};

const AGENT: &str = "scale-out-load";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("create") => create(&args[1..]),
        Some("run") => run(&args[1..]),
        _ => Err(
            "usage: scale_out_load create N NAME=DIR | run ROUTES ACKS THREADS RATE NAME=DIR..."
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("scale_out_load: {message}");
            ExitCode::FAILURE
        }
    }
}

fn options() -> Options {
    Options::new()
        .checkpoint_policy(CheckpointPolicy::Replicated)
        .durability(Durability::Full)
}

/// The tenant ids of a drill of `n` tenants.
fn tenant_id(i: usize) -> String {
    format!("t{i:03}")
}

fn create(args: &[String]) -> Result<(), String> {
    let [n, server] = args else {
        return Err("usage: scale_out_load create N NAME=DIR".to_owned());
    };
    let n: usize = n
        .parse()
        .map_err(|_| format!("N must be a number, not {n:?}"))?;
    let (_, dir) = server_arg(server)?;
    let tenants =
        Tenants::open_with(&dir, options(), 8).map_err(|e| format!("{}: {e}", dir.display()))?;
    for i in 0..n {
        let id = tenant_id(i);
        tenants
            .create(&id)
            .map_err(|e| format!("create {id}: {e}"))?;
    }
    Ok(())
}

fn server_arg(arg: &str) -> Result<(String, PathBuf), String> {
    arg.split_once('=')
        .map(|(name, dir)| (name.to_owned(), PathBuf::from(dir)))
        .ok_or_else(|| format!("a server is NAME=DIR, not {arg:?}"))
}

/// Everything the writer threads, the router and the control loop share.
struct Load {
    servers: HashMap<String, Tenants>,
    ids: Vec<String>,
    routes: RwLock<HashMap<String, String>>,
    acks: Mutex<LineWriter<File>>,
    /// Per tenant (by index), the highest write acknowledged so far.
    acked: Vec<AtomicU64>,
    stop: AtomicBool,
    acked_total: AtomicU64,
    refused_total: AtomicU64,
}

fn run(args: &[String]) -> Result<(), String> {
    let [routes_path, acks_path, threads, rate, servers @ ..] = args else {
        return Err("usage: scale_out_load run ROUTES ACKS THREADS RATE NAME=DIR...".to_owned());
    };
    let threads: usize = threads
        .parse()
        .map_err(|_| format!("THREADS must be a number, not {threads:?}"))?;
    let rate: f64 = rate
        .parse()
        .map_err(|_| format!("RATE must be a number, not {rate:?}"))?;
    let mut by_name = HashMap::new();
    for server in servers {
        let (name, dir) = server_arg(server)?;
        let tenants = Tenants::open_with(&dir, options(), 256)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        by_name.insert(name, tenants);
    }
    let routes_path = Path::new(routes_path);
    let (routes, mut seen) = read_routes(routes_path)?;
    let mut ids: Vec<String> = routes.keys().cloned().collect();
    ids.sort();
    let acks = File::create(acks_path).map_err(|e| format!("{acks_path}: {e}"))?;
    let load = Load {
        acked: ids.iter().map(|_| AtomicU64::new(0)).collect(),
        servers: by_name,
        ids,
        routes: RwLock::new(routes),
        acks: Mutex::new(LineWriter::new(acks)),
        stop: AtomicBool::new(false),
        acked_total: AtomicU64::new(0),
        refused_total: AtomicU64::new(0),
    };
    let threads = threads.max(1);
    let pause = (rate > 0.0).then(|| Duration::from_secs_f64(threads as f64 / rate));
    std::thread::scope(|scope| -> Result<(), String> {
        let writers: Vec<_> = (0..threads)
            .map(|k| {
                let load = &load;
                scope.spawn(move || writer(load, k, threads, pause))
            })
            .collect();
        let router = scope.spawn(|| {
            while !load.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
                match std::fs::read_to_string(routes_path) {
                    Ok(text) if text != seen => match parse_routes(&text) {
                        Ok(table) => {
                            *load.routes.write().unwrap_or_else(|e| e.into_inner()) = table;
                            seen = text;
                        }
                        Err(e) => eprintln!("scale_out_load: routes: {e}"),
                    },
                    Ok(_) => {}
                    Err(e) => eprintln!("scale_out_load: {}: {e}", routes_path.display()),
                }
            }
        });
        let control = control(&load);
        load.stop.store(true, Ordering::SeqCst);
        let mut failures = Vec::new();
        for w in writers {
            if let Err(e) = w
                .join()
                .unwrap_or_else(|_| Err("a writer panicked".to_owned()))
            {
                failures.push(e);
            }
        }
        let _ = router.join();
        control?;
        if !failures.is_empty() {
            return Err(failures.join("; "));
        }
        // After the writers stopped: the counts match the acks file.
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "stopped {} {}",
            load.acked_total.load(Ordering::SeqCst),
            load.refused_total.load(Ordering::SeqCst)
        )
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
    })
}

/// Reads the routing table, and its text (to notice a change).
fn read_routes(path: &Path) -> Result<(HashMap<String, String>, String), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((parse_routes(&text)?, text))
}

fn parse_routes(text: &str) -> Result<HashMap<String, String>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some(id), Some(server), None) => Ok((id.to_owned(), server.to_owned())),
                _ => Err(format!("a route is `<tenant> <server>`, not {line:?}")),
            }
        })
        .collect()
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

/// Writer `k` of `threads`: the tenants k, k + threads, … in turn, each at its next
/// unacknowledged write.
fn writer(load: &Load, k: usize, threads: usize, pause: Option<Duration>) -> Result<(), String> {
    let mine: Vec<usize> = (k..load.ids.len()).step_by(threads).collect();
    if mine.is_empty() {
        return Ok(());
    }
    let mut next: Vec<u64> = vec![1; mine.len()];
    let mut next_at = Instant::now();
    let mut turn = 0;
    while !load.stop.load(Ordering::SeqCst) {
        let slot = turn % mine.len();
        turn += 1;
        let index = mine[slot];
        let id = &load.ids[index];
        let n = next[slot];
        let server = load
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
            .ok_or_else(|| format!("tenant {id} has no route"))?;
        let line = match write(load, &server, id, n) {
            Ok(()) => {
                next[slot] += 1;
                load.acked[index].store(n, Ordering::SeqCst);
                load.acked_total.fetch_add(1, Ordering::Relaxed);
                format!("ack {id} {n} {} {server}", unix_ms())
            }
            Err(Refused(reason)) => {
                load.refused_total.fetch_add(1, Ordering::Relaxed);
                format!("refused {id} {n} {} {server} {reason}", unix_ms())
            }
        };
        writeln!(
            load.acks.lock().unwrap_or_else(|e| e.into_inner()),
            "{line}"
        )
        .map_err(|e| format!("acks: {e}"))?;
        if let Some(pause) = pause {
            next_at += pause;
            std::thread::sleep(next_at.saturating_duration_since(Instant::now()));
        }
    }
    Ok(())
}

/// Why a write was not acknowledged: it was refused, and nothing of it was written.
struct Refused(String);

/// Write `n` of tenant `id` on `server`. A busy database or a commit of unknown outcome
/// is retried with the same key; a refusal is returned, for the caller to try again
/// later (where the route then says); any other error is a refusal too, named.
fn write(load: &Load, server: &str, id: &str, n: u64) -> Result<(), Refused> {
    let tenants = load
        .servers
        .get(server)
        .ok_or_else(|| Refused(format!("no-server:{server}")))?;
    let episode = Episode::new(AGENT).idempotency_key(format!("w-{n}"));
    let mut batch = Batch::new();
    batch.observe("scale-out drill", format!("{id} write {n}"));
    let mut attempt = 1;
    loop {
        // Never create a tenant by routing a write to it: a server without the file (a
        // route updated before the file arrived, or after it left) refuses.
        let result = tenants
            .get_existing(id)
            .and_then(|memory| memory.record(&episode, &batch));
        match result {
            Ok(_) => return Ok(()),
            Err(e) if attempt < 5 && (e.is_outcome_unknown() || e.is_retryable()) => {
                std::thread::sleep(Duration::from_millis(20 * attempt));
                attempt += 1;
            }
            Err(Error::InUse { .. }) => return Err(Refused("fenced".to_owned())),
            Err(Error::Moved { .. }) => return Err(Refused("moved".to_owned())),
            Err(e) if e.is_not_found() => return Err(Refused("not-here".to_owned())),
            Err(e) => {
                return Err(Refused(format!(
                    "error:{}",
                    e.to_string().replace(' ', "_")
                )));
            }
        }
    }
}

/// The control loop on standard input: drains, moves and aborts, until `stop`.
fn control(load: &Load) -> Result<(), String> {
    let mut drained: HashMap<String, Drained<'_>> = HashMap::new();
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for line in stdin.lock().lines() {
        let line = line.map_err(|e| format!("stdin: {e}"))?;
        let words: Vec<&str> = line.split_whitespace().collect();
        let reply = match words.as_slice() {
            ["drain", id] => {
                let server = load
                    .routes
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(*id)
                    .cloned();
                match server
                    .as_ref()
                    .and_then(|s| load.servers.get(s).map(|t| (s, t)))
                {
                    None => format!("error {id} no route to a known server"),
                    Some((name, tenants)) => match tenants.drain(id) {
                        Ok(guard) => {
                            let acked = load
                                .ids
                                .iter()
                                .position(|t| t == id)
                                .map_or(0, |i| load.acked[i].load(Ordering::SeqCst));
                            let reply =
                                format!("drained {id} {name} {} {acked}", guard.last_seq().get());
                            drained.insert((*id).to_owned(), guard);
                            reply
                        }
                        Err(e) => format!("error {id} {e}"),
                    },
                }
            }
            // On an error the guard stays: the tenant is still fenced here.
            ["moved", id, to] => match drained.get_mut(*id).map(|guard| guard.moved(to)) {
                Some(Ok(())) => {
                    drained.remove(*id);
                    format!("removed {id}")
                }
                Some(Err(e)) => format!("error {id} {e}"),
                None => format!("error {id} is not drained"),
            },
            ["abort", id] => match drained.remove(*id) {
                Some(guard) => {
                    drop(guard);
                    format!("resumed {id}")
                }
                None => format!("error {id} is not drained"),
            },
            ["stop"] => break,
            _ => format!("error - unknown command {line:?}"),
        };
        writeln!(out, "{reply}")
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(())
}
