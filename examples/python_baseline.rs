//! The Rust side of `python/bench/bench.py`: the same workload the Python benchmark runs
//! through the bindings, run on the library directly, so the benchmark can print the
//! bindings' figures as ratios to these. Prints one JSON object.
//!
//! ```sh
//! cargo run --release --example python_baseline -- --names 500 --calls 4000 --threads 8 --searches 2000
//! ```
//!
//! Workload (python/bench/bench.py implements the same, name for name): `--names`
//! entities `Company 0000`… created first; then `--calls` `add_triple` calls from 1 thread
//! and `--calls` spread over `--threads` threads, each naming existing entities in one of
//! four spellings (as written, upper case, lower case with doubled spaces, full-width);
//! then `--searches` searches of `company NNNN works` from one thread.

use std::time::Instant;

use cairn::{Memory, SearchOptions};

fn name(i: usize) -> String {
    format!("Company {i:04}")
}

/// Spelling `k` (0..4) of `name`; all four have the same key.
fn variant(k: usize, name: &str) -> String {
    match k % 4 {
        0 => name.to_owned(),
        1 => name.to_uppercase(),
        2 => name.to_lowercase().replace(' ', "  "),
        _ => name
            .to_lowercase()
            .chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap_or(c),
                other => other,
            })
            .collect(),
    }
}

const PREDICATES: [&str; 4] = ["works with", "WORKS_WITH", "supplies", "competes with"];

/// Call `i` of thread `t`: subject, predicate, object.
fn triple(names: usize, t: usize, i: usize) -> (String, &'static str, String) {
    let a = (i * 31 + t * 17) % names;
    let mut b = (a * 7 + 3 + i) % names;
    if b == a {
        b = (b + 1) % names;
    }
    (
        variant(i + t, &name(a)),
        PREDICATES[(i + t) % 4],
        variant(i + 2 * t + 1, &name(b)),
    )
}

/// A fresh memory holding the `names` entities.
fn prepared(names: usize) -> cairn::Result<Memory> {
    let memory = Memory::ephemeral()?;
    for i in 0..names {
        memory.ensure_entity(&name(i))?;
    }
    Ok(memory)
}

/// `add_triple` calls per second: `calls` calls spread over `threads` threads.
fn writes(memory: &Memory, names: usize, calls: usize, threads: usize) -> cairn::Result<f64> {
    let per_thread = calls / threads;
    let start = Instant::now();
    std::thread::scope(|s| -> cairn::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> cairn::Result<()> {
                    for i in 0..per_thread {
                        let (subject, predicate, object) = triple(names, t, i);
                        memory.add_triple((subject.as_str(), predicate, object.as_str()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().expect("writer thread panicked")?;
        }
        Ok(())
    })?;
    Ok((per_thread * threads) as f64 / start.elapsed().as_secs_f64())
}

fn main() -> cairn::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut names, mut calls, mut threads, mut searches) = (500, 4000, 8, 2000);
    while let Some(flag) = args.next() {
        let value: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        match flag.as_str() {
            "--names" => names = value.max(2),
            "--calls" => calls = value.max(1),
            "--threads" => threads = value.max(1),
            "--searches" => searches = value.max(1),
            other => {
                eprintln!("python_baseline: unknown flag {other}");
                std::process::exit(2);
            }
        }
    }
    let single = writes(&prepared(names)?, names, calls, 1)?;
    let memory = prepared(names)?;
    let parallel = writes(&memory, names, calls, threads)?;
    let entities = memory.stats()?.entities;
    memory.sync()?;
    let options = SearchOptions::new();
    let start = Instant::now();
    let mut hits = 0;
    for i in 0..searches {
        let query = format!("company {:04} works", (i * 13) % names);
        hits += memory.search(&query, &options)?.len();
    }
    let search_us = start.elapsed().as_secs_f64() * 1e6 / searches as f64;
    println!(
        "{{\"writes_1\": {single:.1}, \"writes_n\": {parallel:.1}, \"threads\": {threads}, \
         \"entities\": {entities}, \"search_us\": {search_us:.2}, \"hits\": {hits}}}"
    );
    Ok(())
}
