//! Per-call latency of `cairn mcp` through a real MCP client (rmcp's, over stdio, the
//! release binary as a child process), at 2,000 and at 100,000 entities.
//!
//! Run with `cargo bench --bench mcp`. Parts, each printing a `>>>` line with median and
//! p95 over its calls:
//!
//! 1. `create_entities` with 100 entities × 3 observations each, 20 calls (this builds
//!    the 2,000-entity memory), then `create_relations` with 100 relations, 20 calls;
//! 2. `search_nodes` (limit 10) and `search_memory` (limit 20, depth 2, 1,000 tokens),
//!    200 queries each, on that 2,000-entity memory;
//! 3. the same two searches on a 100,000-entity memory (100,000 entities with 2
//!    observations each, 200,000 relations; built through the library once and cached
//!    in `<target>/cairn-bench/mcp-100k-v1.db`, about a minute);
//! 4. cold starts on a scratch copy of that memory (issue 12, item 4): the first call of
//!    a freshly started `cairn mcp`, `create_entities` (one new entity) on some servers
//!    and `search_nodes` on others, [`FRESH_SERVERS`] servers each, timed from the call
//!    (after the handshake, which is reported too); target 100 ms;
//! 5. the CLI on the same copy: wall time of whole `cairn add` and `cairn search`
//!    processes (spawn to exit), [`CLI_RUNS`] invocations each; target 50 ms. The same
//!    on the 2,000-entity memory of part 1 (run after part 2), for comparison.
//!
//! Parts 4 and 5 print the load average (`/proc/loadavg`) before and after: the machine
//! they were measured on is shared.
//!
//! The client waits for each reply before sending the next call (latency, not
//! throughput). Percentiles are nearest-rank.

#[path = "../../benches/common/mod.rs"]
mod common;
// Only the names and words of the synthetic memory are used here.
#[allow(dead_code)]
#[path = "../../benches/synthetic/mod.rs"]
mod synthetic;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn::{KgEntity, KgRelation, Memory};
use common::{load_average, percentile};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};
use synthetic::Synthetic;

type Client = RunningService<RoleClient, ()>;

const LARGE: usize = 100_000;
const QUERIES: usize = 200;
/// Fresh servers started per kind of first call (part 4).
const FRESH_SERVERS: usize = 10;
/// Invocations of each CLI command (part 5).
const CLI_RUNS: usize = 20;
/// Targets of issue 12 for parts 4 and 5.
const FIRST_CALL_TARGET: Duration = Duration::from_millis(100);
const CLI_TARGET: Duration = Duration::from_millis(50);

fn summarize(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "\n>>> {what}: median {:.2} ms, p95 {:.2} ms (min {:.2}, max {:.2}, {} calls)\n",
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 95.0)),
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}

async fn connect(db: &Path) -> Client {
    let command = tokio::process::Command::new(env!("CARGO_BIN_EXE_cairn")).configure(|c| {
        c.arg("--db").arg(db).arg("mcp");
    });
    ().serve(TokioChildProcess::new(command).expect("spawn cairn mcp"))
        .await
        .expect("MCP handshake")
}

/// One timed call; panics if the tool reports an error.
async fn timed(client: &Client, tool: &str, args: Value) -> Duration {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    let start = Instant::now();
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .expect("call");
    let elapsed = start.elapsed();
    assert_ne!(result.is_error, Some(true), "{tool}: {:?}", result.content);
    elapsed
}

fn entity(syn: &Synthetic, rng: &mut StdRng, i: usize, observations: usize) -> KgEntity {
    let sentence = |rng: &mut StdRng| {
        (0..8)
            .map(|_| syn.text_word(rng).to_owned())
            .collect::<Vec<_>>()
            .join(" ")
    };
    KgEntity {
        name: syn.entities[i].clone(),
        entity_type: ["person", "organization", "place", "project"][i % 4].into(),
        observations: (0..observations).map(|_| sentence(rng)).collect(),
    }
}

fn relation(syn: &Synthetic, rng: &mut StdRng, n: usize) -> KgRelation {
    KgRelation {
        from: syn.entities[rng.random_range(0..n)].clone(),
        to: syn.entities[rng.random_range(0..n)].clone(),
        relation_type: ["works at", "knows", "owns", "located in"][rng.random_range(0..4)].into(),
    }
}

fn queries(syn: &Synthetic, n: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(11);
    (0..QUERIES)
        .map(|i| {
            let mut words: Vec<String> = (0..2)
                .map(|_| syn.content_word(&mut rng).to_owned())
                .collect();
            if i % 2 == 0 {
                words.push(syn.entities[rng.random_range(0..n)].clone());
            }
            words.join(" ")
        })
        .collect()
}

async fn searches(client: &Client, syn: &Synthetic, n: usize, label: &str) {
    let queries = queries(syn, n);
    // Warm up: the first search after start pays for opening the index.
    timed(client, "search_nodes", json!({"query": queries[0]})).await;
    let mut nodes = Vec::new();
    for q in &queries {
        nodes.push(timed(client, "search_nodes", json!({"query": q, "limit": 10})).await);
    }
    summarize(&format!("search_nodes at {label} entities"), nodes);
    let mut memory = Vec::new();
    for q in &queries {
        memory.push(
            timed(
                client,
                "search_memory",
                json!({"query": q, "limit": 20, "depth": 2, "token_budget": 1000}),
            )
            .await,
        );
    }
    summarize(&format!("search_memory at {label} entities"), memory);
}

/// The median of `samples` against `target`, as a `>>>` line.
fn against_target(what: &str, mut samples: Vec<Duration>, target: Duration) {
    samples.sort();
    let p50 = percentile(&samples, 50.0);
    println!(
        "\n>>> {what}: p50 {:.2} ms = {:.2} x the {} ms target (p95 {:.2} ms, max {:.2} ms, {} runs)\n",
        p50.as_secs_f64() * 1e3,
        p50.as_secs_f64() / target.as_secs_f64(),
        target.as_millis(),
        percentile(&samples, 95.0).as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        samples.len()
    );
}

/// Part 4: the first call of fresh servers on `db`.
async fn first_calls(db: &Path, syn: &Synthetic) {
    println!("load average before part 4: {}", load_average());
    let queries = queries(syn, LARGE);
    let (mut handshakes, mut creates, mut searches) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..2 * FRESH_SERVERS {
        let start = Instant::now();
        let client = connect(db).await;
        handshakes.push(start.elapsed());
        if run % 2 == 0 {
            let entity = KgEntity {
                name: format!("Fresh server entity {run}"),
                entity_type: "probe".into(),
                observations: vec!["started to measure a first call".into()],
            };
            creates.push(timed(&client, "create_entities", json!({ "entities": [entity] })).await);
        } else {
            let query = &queries[run % queries.len()];
            searches.push(
                timed(
                    &client,
                    "search_nodes",
                    json!({"query": query, "limit": 10}),
                )
                .await,
            );
        }
        client.cancel().await.expect("close");
    }
    summarize(
        "fresh server: spawn + MCP handshake at 100,000 entities",
        handshakes,
    );
    against_target(
        "fresh server: first call create_entities (1 entity) at 100,000 entities",
        creates,
        FIRST_CALL_TARGET,
    );
    against_target(
        "fresh server: first call search_nodes (limit 10) at 100,000 entities",
        searches,
        FIRST_CALL_TARGET,
    );
    println!("load average after part 4: {}", load_average());
}

/// Part 5: whole `cairn add` and `cairn search` processes on `db`, which holds the first
/// `n` synthetic entities (`label` of them).
fn cli_invocations(db: &Path, syn: &Synthetic, n: usize, label: &str) {
    println!("load average before part 5 at {label}: {}", load_average());
    let run = |args: &[&str]| {
        let start = Instant::now();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .arg("--db")
            .arg(db)
            .args(args)
            .env_remove("CAIRN_DB")
            .env_remove("CAIRN_MODEL")
            .output()
            .expect("run cairn");
        let elapsed = start.elapsed();
        assert!(
            out.status.success(),
            "cairn {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        elapsed
    };
    let adds: Vec<Duration> = (0..CLI_RUNS)
        .map(|i| {
            let subject = format!("Cli probe {i}");
            let object = &syn.entities[i * 97 % n];
            run(&["add", &subject, "inspected", object])
        })
        .collect();
    against_target(
        &format!("cairn add (one triple, whole process) at {label} entities"),
        adds,
        CLI_TARGET,
    );
    let queries = queries(syn, n);
    let searches: Vec<Duration> = (0..CLI_RUNS)
        .map(|i| run(&["search", &queries[i % queries.len()]]))
        .collect();
    against_target(
        &format!("cairn search (limit 10, depth 2, whole process) at {label} entities"),
        searches,
        CLI_TARGET,
    );
    println!("load average after part 5 at {label}: {}", load_average());
}

fn bench_dir() -> PathBuf {
    let dir = common::bench_dir();
    std::fs::create_dir_all(&dir).expect("bench dir");
    dir
}

/// The cached 100k-entity memory, built through the library if missing.
fn large_memory(syn: &Synthetic) -> PathBuf {
    let db = bench_dir().join("mcp-100k-v1.db");
    let done = bench_dir().join("mcp-100k-v1.db.done");
    if done.exists() {
        return db;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let _ = std::fs::remove_dir_all(format!("{}.index", db.display()));
    let start = Instant::now();
    let memory = Memory::open(&db).expect("open");
    let kg = memory.knowledge_graph();
    let mut rng = StdRng::seed_from_u64(7);
    for chunk in (0..LARGE).collect::<Vec<_>>().chunks(5_000) {
        let entities: Vec<KgEntity> = chunk.iter().map(|&i| entity(syn, &mut rng, i, 2)).collect();
        kg.create_entities(&entities).expect("entities");
    }
    for _ in 0..40 {
        let relations: Vec<KgRelation> =
            (0..5_000).map(|_| relation(syn, &mut rng, LARGE)).collect();
        kg.create_relations(&relations).expect("relations");
    }
    memory.sync().expect("sync");
    drop(memory);
    std::fs::write(&done, "built").expect("marker");
    println!(
        "built {} in {:.1} s",
        db.display(),
        start.elapsed().as_secs_f64()
    );
    db
}

fn main() {
    let syn = Synthetic::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let small = dir.path().join("mcp-2k.db");
        let client = connect(&small).await;
        let mut rng = StdRng::seed_from_u64(3);
        let mut creates = Vec::new();
        for batch in 0..20 {
            let entities: Vec<KgEntity> = (batch * 100..batch * 100 + 100)
                .map(|i| entity(&syn, &mut rng, i, 3))
                .collect();
            creates.push(timed(&client, "create_entities", json!({ "entities": entities })).await);
        }
        summarize(
            "create_entities, 100 entities x 3 observations per call",
            creates,
        );
        let mut relations = Vec::new();
        for _ in 0..20 {
            let batch: Vec<KgRelation> =
                (0..100).map(|_| relation(&syn, &mut rng, 2_000)).collect();
            relations.push(timed(&client, "create_relations", json!({ "relations": batch })).await);
        }
        summarize("create_relations, 100 relations per call", relations);
        searches(&client, &syn, 2_000, "2,000").await;
        client.cancel().await.expect("close");
        // The same commands on the small memory: what a CLI call costs whatever the size.
        cli_invocations(&small, &syn, 2_000, "2,000");

        let large = large_memory(&syn);
        let client = connect(&large).await;
        searches(&client, &syn, LARGE, "100,000").await;
        client.cancel().await.expect("close");

        // Parts 4 and 5 write: on a copy, so the cached memory stays as built.
        let scratch = bench_dir().join("mcp-100k-scratch.db");
        common::remove_memory_files(&scratch);
        common::copy_memory(&large, &scratch).expect("copy the 100k memory");
        first_calls(&scratch, &syn).await;
        cli_invocations(&scratch, &syn, LARGE, "100,000");
        common::remove_memory_files(&scratch);
    });
}
