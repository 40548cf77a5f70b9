//! Search latency on a 100k-entity synthetic memory, against SQLite FTS5 on the same text.
//!
//! Run with `cargo bench --bench search`. The memory (100,000 entities, 500,000 relations,
//! 100,000 chunks; see `benches/synthetic/mod.rs`) is generated and loaded through the
//! public API once, into `<target>/cairn-bench/synthetic-v<N>.db`, and reused by later
//! runs while its stats match (a first run spends several minutes building it). Five
//! parts, each printing `>>>` summary lines:
//!
//! 1. `dataset`: build (or reuse) the memory and print its size and build time.
//! 2. `hybrid`: `search` with the default channels, depth 2, limit 20, over 200 fixed
//!    queries; per-query latencies over several passes, p50 / p99 (also by query class,
//!    and at depth 0 and 1 for comparison). Also a criterion benchmark.
//! 3. `fts5`: cairn's BM25 channel alone over chunks (`depth(0)`, chunks only, limit 20)
//!    against an FTS5 table (`porter unicode61`) holding the same 100,000 chunk texts,
//!    queried with `ORDER BY bm25(fts) LIMIT 20`; both interleaved query by query.
//! 4. `concurrent`: the hybrid search again while 4 writer threads add triples,
//!    observations and units in a loop through clones of the same `Memory`.
//! 5. `visible`: write→visible delay: write a triple or a unit holding a unique token,
//!    then poll a BM25 search for it (no `sync`) until it shows up; 200 times.
//!
//! 6. `vectors`: the same memory with an embedder (`HashingEmbedder::new(384)`: a
//!    model-free stand-in with a real model's dimension, so the vector channel's cost is
//!    real but the query's embedding is nearly free), built once from a copy of the
//!    dataset (the indexer re-indexes it and embeds its 100,000 chunks) into
//!    `synthetic-v<N>-hash384.db`. Prints hybrid search p50 / p99 with the vector channel
//!    on and, in the same run, off; then the vector channel's own scan, fast path
//!    (`VectorIndex::top_k`) against exact (`top_k_exact`) on the file's own vectors,
//!    interleaved query by query, with their ratio and the fast path's recall against
//!    exact at k = 10, 50 and 100 (a limit-20 search asks the channel for 100).
//!
//!    With `CAIRN_MODEL=<all-MiniLM-L6-v2 dir>` and `--features model`, the hybrid search
//!    again with the real model embedding each query (the chunks keep their hashing
//!    vectors: embedding 100,000 texts with the model takes most of an hour on this
//!    machine), against the query's embedding alone and the search without the vector
//!    channel, interleaved query by query (`CAIRN_SEARCH_BENCH=model`: this alone). The
//!    model is loaded once per query precision (f32, bf16, int8 weights: `QueryPrecision`)
//!    and the precisions alternate query by query, so their ratios come from one run; each
//!    search's time is split into its parts (lexical, graph, the query's embedding, the
//!    vector scan, fusion and re-ranking, texts, the rest) from the `cairn::search` trace
//!    event and the bench embedder's own clock. `CAIRN_SEARCH_MODEL_THREADS=2,1` (the
//!    default) sets the model's thread counts tried; `CAIRN_SEARCH_PRECISIONS=bf16` (any
//!    of `f32,bf16,int8`, the default) the precisions: one alone reads one model's
//!    weights query after query, as a process with one embedder does (alternating them,
//!    the others' weights pass through the cache between two of its queries).
//!
//! Parts 4 and 5 write, so they run on a copy of the cached files, deleted afterwards.
//!
//! Environment: `CAIRN_SEARCH_BENCH=hybrid,fts5,concurrent,visible,vectors` runs only
//! the listed parts (default: all); `CAIRN_SEARCH_PASSES=n` sets the passes over the query set
//! (default 5). A criterion filter on the command line only filters the criterion
//! benchmarks, not the percentile passes.
//!
//! Percentiles are nearest-rank over the sorted per-query samples of this run.

mod common;
mod synthetic;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cairn::{
    Batch, Embedder, HashingEmbedder, HitKind, Memory, Options, SearchOptions, Target, Unit,
    VectorIndex,
};
use common::{
    Samples, bench_dir, copy_dir, dir_size, mib, ms, percentile, recall, remove_memory_files,
    summarize, sync_fully, with_suffix,
};
use criterion::Criterion;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;
use synthetic::{CHUNKS, ENTITIES, GENERATOR_VERSION, PREDICATES, Query, RELATIONS, Synthetic};

/// Triples per `Memory::apply` while building the memory.
const BATCH_TRIPLES: usize = 10_000;
/// Units per `Memory::add_units` (one document each) while building the memory.
const UNITS_PER_DOCUMENT: usize = 500;
const LIMIT: usize = 20;
const DEPTH: u32 = 2;
const WRITERS: usize = 4;
const VISIBILITY_SAMPLES: usize = 200;
/// Give up on one write→visible sample after this long.
const VISIBILITY_TIMEOUT: Duration = Duration::from_secs(10);

fn env_parts() -> Vec<String> {
    match std::env::var("CAIRN_SEARCH_BENCH") {
        Ok(v) if !v.trim().is_empty() => v.split(',').map(|s| s.trim().to_owned()).collect(),
        _ => ["hybrid", "fts5", "concurrent", "visible", "vectors"]
            .map(String::from)
            .to_vec(),
    }
}

fn env_passes() -> usize {
    std::env::var("CAIRN_SEARCH_PASSES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(5)
}

/// Segments of the tantivy index (from every `meta.json` under the index folder).
fn index_segments(db: &Path) -> usize {
    fn walk(dir: &Path, n: &mut usize) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, n);
            } else if path.file_name().is_some_and(|f| f == "meta.json")
                && let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(meta) = serde_json::from_str::<serde_json::Value>(&text)
            {
                *n += meta["segments"].as_array().map_or(0, Vec::len);
            }
        }
    }
    let mut n = 0;
    walk(&with_suffix(db, ".index"), &mut n);
    n
}

fn open(db: &Path) -> Memory {
    Memory::open_with(db, Options::new()).expect("open memory")
}

// ----- 1. the dataset ---------------------------------------------------------------

fn expected_stats(stats: &cairn::Stats) -> bool {
    stats.entities == ENTITIES as u64
        && stats.relations == RELATIONS as u64
        && stats.chunks == CHUNKS as u64
        && stats.documents == CHUNKS.div_ceil(UNITS_PER_DOCUMENT) as u64
        && stats.observations == 0
}

/// The cached memory, built if it is missing or does not have the expected stats.
fn ensure_dataset(syn: &Synthetic, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let db = dir.join(format!("synthetic-v{GENERATOR_VERSION}.db"));
    let done = with_suffix(&db, ".done");
    if done.exists() && db.exists() {
        let start = Instant::now();
        let memory = open(&db);
        let stats = memory.stats().unwrap();
        if expected_stats(&stats) {
            sync_fully(&memory);
            println!(
                "reusing {} ({stats:?}; opened and synced in {})",
                db.display(),
                ms(start.elapsed())
            );
            drop(memory);
            summarize(format!(
                "dataset: reused {} (built by an earlier run; delete it to rebuild): {} entities, \
                 {} relations, {} chunks, {} documents, {} change rows; db {}, index {} in {} segments",
                db.display(),
                stats.entities,
                stats.relations,
                stats.chunks,
                stats.documents,
                stats.changes,
                mib(dir_size(&db) + dir_size(&with_suffix(&db, "-wal"))),
                mib(dir_size(&with_suffix(&db, ".index"))),
                index_segments(&db),
            ));
            return db;
        }
        println!(
            "{} has unexpected stats {stats:?}; rebuilding",
            db.display()
        );
    }
    drop_stale_and_build(syn, &db);
    db
}

fn drop_stale_and_build(syn: &Synthetic, db: &Path) {
    remove_memory_files(db);
    println!("building the synthetic memory at {} ...", db.display());
    let start = Instant::now();
    let memory = open(db);

    let t = Instant::now();
    let (relations, repeats) = syn.relations();
    let generate_relations = t.elapsed();

    let t = Instant::now();
    for part in relations
        .chunks(BATCH_TRIPLES)
        .chain(repeats.chunks(BATCH_TRIPLES))
    {
        let mut batch = Batch::new();
        for r in part {
            batch.triple((
                syn.entities[r.subject as usize].as_str(),
                PREDICATES[r.predicate as usize],
                syn.entities[r.object as usize].as_str(),
            ));
        }
        memory.apply(&batch).expect("apply");
    }
    let load_relations = t.elapsed();
    println!(
        "  {} triples (+{} repeats) applied in {}",
        relations.len(),
        repeats.len(),
        ms(load_relations)
    );

    let t = Instant::now();
    let chunks = syn.chunks();
    let generate_chunks = t.elapsed();

    let t = Instant::now();
    for (d, texts) in chunks.chunks(UNITS_PER_DOCUMENT).enumerate() {
        let units: Vec<Unit> = texts.iter().map(|t| Unit::new(t.as_str())).collect();
        memory
            .add_units(&format!("synthetic/{d}"), &units)
            .expect("add_units");
    }
    let load_chunks = t.elapsed();
    println!("  {} chunks added in {}", chunks.len(), ms(load_chunks));

    let index_wait = sync_fully(&memory);
    let stats = memory.stats().unwrap();
    assert!(expected_stats(&stats), "unexpected stats {stats:?}");
    drop(memory);
    let total = start.elapsed();
    std::fs::write(with_suffix(db, ".done"), format!("{stats:?}\n")).unwrap();
    summarize(format!(
        "dataset: built {} in {:.1} s: {} entities, {} relations, {} chunks, {} documents, \
         {} change rows (generate relations {:.1} s, apply {} triples in batches of {} {:.1} s, \
         generate chunks {:.1} s, add_units {:.1} s, then sync waited {:.1} s for the index); \
         db {}, index {} in {} segments",
        db.display(),
        total.as_secs_f64(),
        stats.entities,
        stats.relations,
        stats.chunks,
        stats.documents,
        stats.changes,
        generate_relations.as_secs_f64(),
        relations.len() + repeats.len(),
        BATCH_TRIPLES,
        load_relations.as_secs_f64(),
        generate_chunks.as_secs_f64(),
        load_chunks.as_secs_f64(),
        index_wait.as_secs_f64(),
        mib(dir_size(db) + dir_size(&with_suffix(db, "-wal"))),
        mib(dir_size(&with_suffix(db, ".index"))),
        index_segments(db),
    ));
}

/// The FTS5 table over the same chunk texts (rowid = cairn's chunk id), built from the
/// cairn file if missing.
fn ensure_fts(cairn_db: &Path) -> PathBuf {
    let fts = cairn_db.with_file_name(format!("synthetic-v{GENERATOR_VERSION}-fts5.db"));
    let done = with_suffix(&fts, ".done");
    if done.exists() && fts.exists() {
        let conn = Connection::open(&fts).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM fts", [], |r| r.get(0))
            .unwrap_or(-1);
        if n == CHUNKS as i64 {
            println!("reusing {}", fts.display());
            return fts;
        }
    }
    for suffix in ["", "-wal", "-shm", "-journal", ".done"] {
        let _ = std::fs::remove_file(with_suffix(&fts, suffix));
    }
    let start = Instant::now();
    let conn = Connection::open(&fts).unwrap();
    conn.execute_batch("CREATE VIRTUAL TABLE fts USING fts5(text, tokenize='porter unicode61')")
        .unwrap();
    let source = Connection::open(cairn_db).unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut insert = conn
            .prepare("INSERT INTO fts(rowid, text) VALUES (?1, ?2)")
            .unwrap();
        let mut select = source
            .prepare("SELECT id, text FROM chunk ORDER BY id")
            .unwrap();
        let mut rows = select.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let id: i64 = row.get(0).unwrap();
            let text: String = row.get(1).unwrap();
            insert.execute((id, text)).unwrap();
        }
    }
    tx.commit().unwrap();
    let load = start.elapsed();
    conn.execute("INSERT INTO fts(fts) VALUES ('optimize')", [])
        .unwrap();
    let total = start.elapsed();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM fts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, CHUNKS as i64);
    std::fs::write(&done, format!("{n} rows\n")).unwrap();
    summarize(format!(
        "fts5 table: built {} in {:.1} s ({} rows inserted in one transaction in {:.1} s, then \
         'optimize'); {}",
        fts.display(),
        total.as_secs_f64(),
        n,
        load.as_secs_f64(),
        mib(dir_size(&fts)),
    ));
    fts
}

// ----- 2. hybrid search --------------------------------------------------------------

fn hybrid_options(depth: u32) -> SearchOptions {
    SearchOptions::new().depth(depth).limit(LIMIT)
}

/// One untimed pass (warms the page cache and statement caches), then `passes` timed
/// passes; returns (query index, latency) samples and the mean number of hits.
fn timed_passes(
    memory: &Memory,
    queries: &[Query],
    options: &SearchOptions,
    passes: usize,
) -> (Vec<(usize, Duration)>, f64) {
    for q in queries {
        std::hint::black_box(memory.search(&q.text, options).expect("search"));
    }
    let mut samples = Vec::with_capacity(queries.len() * passes);
    let mut hits = 0usize;
    for _ in 0..passes {
        for (i, q) in queries.iter().enumerate() {
            let start = Instant::now();
            let found = memory.search(&q.text, options).expect("search");
            samples.push((i, start.elapsed()));
            hits += found.len();
            std::hint::black_box(found);
        }
    }
    let mean_hits = hits as f64 / samples.len().max(1) as f64;
    (samples, mean_hits)
}

fn hybrid(c: &mut Criterion, memory: &Memory, syn: &Synthetic, queries: &[Query], passes: usize) {
    let options = hybrid_options(DEPTH);
    let (samples, mean_hits) = timed_passes(memory, queries, &options, passes);
    let all = Samples(samples.iter().map(|s| s.1).collect());
    summarize(format!(
        "hybrid search (default channels, depth {DEPTH}, limit {LIMIT}, {} queries x {passes} \
         passes after 1 warm-up pass, idle): {}; mean hits {mean_hits:.1} (target p50 <= 2 ms, \
         p99 <= 10 ms)",
        queries.len(),
        all.describe(),
    ));
    let class = |f: &dyn Fn(&Query) -> bool| {
        Samples(
            samples
                .iter()
                .filter(|(i, _)| f(&queries[*i]))
                .map(|s| s.1)
                .collect(),
        )
    };
    let words = class(&|q| q.entities == 0);
    let named = class(&|q| q.entities > 0 && !q.hub);
    let hub = class(&|q| q.hub);
    summarize(format!(
        "hybrid search by query class: words only ({} queries) {}; naming entities, no hub \
         ({} queries) {}; naming a hub ({} queries) {}",
        queries.iter().filter(|q| q.entities == 0).count(),
        words.describe(),
        queries.iter().filter(|q| q.entities > 0 && !q.hub).count(),
        named.describe(),
        queries.iter().filter(|q| q.hub).count(),
        hub.describe(),
    ));
    let mut by_depth = Vec::new();
    for depth in [0, 1] {
        let (samples, mean_hits) = timed_passes(memory, queries, &hybrid_options(depth), 1);
        let s = Samples(samples.iter().map(|s| s.1).collect());
        by_depth.push(format!(
            "depth {depth}: {}, mean hits {mean_hits:.1}",
            s.describe()
        ));
    }
    summarize(format!(
        "same queries, limit {LIMIT}, 1 pass each, for comparison: {}; the BFS's per-entity \
         relation query (fan-out 16, bare rusqlite, same file): {}",
        by_depth.join("; "),
        neighbourhood_cost(memory, syn),
    ));

    let mut group = c.benchmark_group("search");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    let mut next = 0usize;
    group.bench_function("hybrid_depth2_limit20", |b| {
        b.iter(|| {
            let q = &queries[next % queries.len()];
            next += 1;
            memory.search(&q.text, &options).expect("search")
        })
    });
    group.finish();
}

/// The query `src/retrieve/bfs.rs` (`neighbourhood`) runs once for every entity of a BFS
/// frontier, copied here to time one BFS step with bare rusqlite on the same file.
const NEIGHBOURHOOD_SQL: &str = "SELECT id, object_id, mentions FROM relation WHERE subject_id = ?1
     UNION ALL
     SELECT id, subject_id, mentions FROM relation WHERE object_id = ?1 AND subject_id != ?1
     ORDER BY 3 DESC, 1 LIMIT ?2";

/// Mean time of the BFS's per-entity query (fan-out 16) for the hubs and for 200 other
/// entities, each called 5 times.
fn neighbourhood_cost(memory: &Memory, syn: &Synthetic) -> String {
    let conn = Connection::open(memory.path()).unwrap();
    let id = |i: usize| memory.resolve(&syn.entities[i]).unwrap().unwrap().get();
    let hubs: Vec<i64> = (0..synthetic::HUBS).map(id).collect();
    let mut rng = StdRng::seed_from_u64(99);
    let others: Vec<i64> = (0..200)
        .map(|_| id(rng.random_range(synthetic::HUBS..ENTITIES)))
        .collect();
    let time = |ids: &[i64]| {
        let mut stmt = conn.prepare_cached(NEIGHBOURHOOD_SQL).unwrap();
        let (mut rows, mut scanned) = (0usize, 0i64);
        for &e in ids {
            scanned += conn
                .query_row(
                    "SELECT (SELECT count(*) FROM relation WHERE subject_id = ?1)
                          + (SELECT count(*) FROM relation WHERE object_id = ?1)",
                    [e],
                    |r| r.get::<_, i64>(0),
                )
                .unwrap();
        }
        let start = Instant::now();
        for _ in 0..5 {
            for &e in ids {
                rows += stmt
                    .query_map((e, 16), |r| r.get::<_, i64>(0))
                    .unwrap()
                    .count();
            }
        }
        let per_call = start.elapsed() / (5 * ids.len()) as u32;
        (per_call, scanned as f64 / ids.len() as f64, rows / 5)
    };
    let (hub, hub_degree, _) = time(&hubs);
    let (other, other_degree, _) = time(&others);
    format!(
        "{} per call for a hub (mean {:.0} relations), {} for another entity (mean {:.1} \
         relations)",
        ms(hub),
        hub_degree,
        ms(other),
        other_degree
    )
}

// ----- 3. BM25 channel vs FTS5 ----------------------------------------------------------

/// Every word of `query` as a quoted FTS5 string, OR-ed: no FTS5 syntax gets through.
fn fts_query(query: &str) -> String {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{}\"", w.to_lowercase()))
        .collect::<Vec<_>>()
        .join(" OR ")
}

const FTS_SQL: &str = "SELECT rowid FROM fts WHERE fts MATCH ?1 ORDER BY bm25(fts) LIMIT 20";

fn fts_search(conn: &Connection, query: &str) -> Vec<i64> {
    let mut stmt = conn.prepare_cached(FTS_SQL).unwrap();
    let rows = stmt.query_map([query], |r| r.get(0)).unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

fn cairn_chunks(memory: &Memory, query: &str, options: &SearchOptions) -> Vec<i64> {
    memory
        .search(query, options)
        .expect("search")
        .into_iter()
        .filter_map(|h| match h.target {
            Target::Chunk(id) => Some(id.get()),
            _ => None,
        })
        .collect()
}

fn bm25_vs_fts5(
    c: &mut Criterion,
    memory: &Memory,
    fts_path: &Path,
    queries: &[Query],
    passes: usize,
) {
    let conn = Connection::open(fts_path).unwrap();
    let options = SearchOptions::new()
        .depth(0)
        .kinds(&[HitKind::Chunk])
        .limit(LIMIT);
    let fts_queries: Vec<String> = queries.iter().map(|q| fts_query(&q.text)).collect();

    // Warm-up pass, which also compares the answers.
    let (mut overlap, mut cairn_hits, mut fts_hits) = (0usize, 0usize, 0usize);
    for (q, fq) in queries.iter().zip(&fts_queries) {
        let a: HashSet<i64> = cairn_chunks(memory, &q.text, &options)
            .into_iter()
            .collect();
        let b: HashSet<i64> = fts_search(&conn, fq).into_iter().collect();
        overlap += a.intersection(&b).count();
        cairn_hits += a.len();
        fts_hits += b.len();
    }

    let (mut cairn, mut fts) = (Samples::default(), Samples::default());
    for _ in 0..passes {
        for (q, fq) in queries.iter().zip(&fts_queries) {
            let start = Instant::now();
            std::hint::black_box(memory.search(&q.text, &options).expect("search"));
            cairn.push(start.elapsed());
            let start = Instant::now();
            std::hint::black_box(fts_search(&conn, fq));
            fts.push(start.elapsed());
        }
    }
    let n = queries.len() as f64;
    summarize(format!(
        "BM25 over {CHUNKS} chunks, limit {LIMIT}, {} queries x {passes} passes, interleaved: \
         cairn (depth 0, chunks only; includes loading the 20 chunk texts from SQLite) {}; \
         FTS5 porter unicode61 bm25() (rowids only) {}; ratio cairn/FTS5 p50 {:.2}, p99 {:.2}, \
         mean {:.2}; mean hits cairn {:.1}, FTS5 {:.1}; mean overlap of the two top-{LIMIT} \
         sets {:.1} chunks",
        queries.len(),
        cairn.describe(),
        fts.describe(),
        cairn.p(50.0).as_secs_f64() / fts.p(50.0).as_secs_f64(),
        cairn.p(99.0).as_secs_f64() / fts.p(99.0).as_secs_f64(),
        cairn.mean().as_secs_f64() / fts.mean().as_secs_f64(),
        cairn_hits as f64 / n,
        fts_hits as f64 / n,
        overlap as f64 / n,
    ));

    let mut group = c.benchmark_group("bm25_chunks");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let mut next = 0usize;
    group.bench_function("cairn_depth0_chunks_limit20", |b| {
        b.iter(|| {
            let q = &queries[next % queries.len()];
            next += 1;
            memory.search(&q.text, &options).expect("search")
        })
    });
    let mut next = 0usize;
    group.bench_function("fts5_bm25_limit20", |b| {
        b.iter(|| {
            let q = &fts_queries[next % fts_queries.len()];
            next += 1;
            fts_search(&conn, q)
        })
    });
    group.finish();
}

// ----- 4. search while 4 threads write ---------------------------------------------------

#[derive(Default)]
struct WriteCounts {
    triples: AtomicU64,
    observations: AtomicU64,
    unit_calls: AtomicU64,
    units: AtomicU64,
    errors: AtomicU64,
}

/// One writer's loop: in turn a triple (about an existing entity; the object new half the
/// time), an observation about an existing entity, and two units of chunk-like text.
fn writer(memory: &Memory, syn: &Synthetic, t: usize, stop: &AtomicBool, counts: &WriteCounts) {
    let mut rng = StdRng::seed_from_u64(0x3717e5 + t as u64);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let result = match n % 3 {
            0 => {
                let subject = &syn.entities[syn.pick_entity(&mut rng, 0.05)];
                let predicate = PREDICATES[rng.random_range(0..PREDICATES.len())];
                let object = if rng.random_bool(0.5) {
                    syn.entities[syn.pick_entity(&mut rng, 0.05)].clone()
                } else {
                    format!("Writer{t} Item{n}")
                };
                memory
                    .add_triple((subject.as_str(), predicate, object.as_str()))
                    .map(|_| counts.triples.fetch_add(1, Ordering::Relaxed))
            }
            1 => {
                let entity = &syn.entities[syn.pick_entity(&mut rng, 0.05)];
                let words = rng.random_range(8..=20);
                let text: Vec<&str> = (0..words).map(|_| syn.text_word(&mut rng)).collect();
                memory
                    .observe(entity.as_str(), &text.join(" "))
                    .map(|_| counts.observations.fetch_add(1, Ordering::Relaxed))
            }
            _ => {
                let texts = [syn.chunk_text(&mut rng), syn.chunk_text(&mut rng)];
                let units: Vec<Unit> = texts.iter().map(|t| Unit::new(t.as_str())).collect();
                memory
                    .add_units(&format!("writer-{t}"), &units)
                    .map(|(_, ids)| {
                        counts.units.fetch_add(ids.len() as u64, Ordering::Relaxed);
                        counts.unit_calls.fetch_add(1, Ordering::Relaxed)
                    })
            }
        };
        if let Err(e) = result
            && counts.errors.fetch_add(1, Ordering::Relaxed) < 5
        {
            eprintln!("writer {t}: {e}");
        }
        n += 1;
    }
}

fn concurrent(memory: &Memory, syn: &Synthetic, queries: &[Query], passes: usize) {
    let options = hybrid_options(DEPTH);
    // Warm-up pass, alone.
    for q in queries {
        std::hint::black_box(memory.search(&q.text, &options).expect("search"));
    }
    let before = memory.stats().unwrap();
    let stop = AtomicBool::new(false);
    let counts = WriteCounts::default();
    let barrier = Barrier::new(WRITERS + 1);
    let mut latencies = Samples::default();
    let mut hits = 0usize;
    let mut searching = Duration::ZERO;
    let start = std::thread::scope(|s| {
        for t in 0..WRITERS {
            let (memory, stop, counts, barrier) = (memory.clone(), &stop, &counts, &barrier);
            s.spawn(move || {
                // Opens this thread's connection before the clock starts.
                memory.resolve("warm up").unwrap();
                barrier.wait();
                writer(&memory, syn, t, stop, counts);
            });
        }
        barrier.wait();
        let start = Instant::now();
        for _ in 0..passes {
            for q in queries {
                let t = Instant::now();
                let found = memory.search(&q.text, &options).expect("search");
                latencies.push(t.elapsed());
                hits += found.len();
                std::hint::black_box(found);
            }
        }
        searching = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        start
    });
    // Until every writer finished its last call (the scope joined them).
    let writing = start.elapsed();
    let lag = sync_fully(memory);
    let after = memory.stats().unwrap();
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let calls = get(&counts.triples) + get(&counts.observations) + get(&counts.unit_calls);
    let secs = writing.as_secs_f64();
    summarize(format!(
        "hybrid search (depth {DEPTH}, limit {LIMIT}, {} queries x {passes} passes, {:.1} s) \
         while {WRITERS} writer threads write: {}; mean hits {:.1} (target p99 <= 20 ms)",
        queries.len(),
        searching.as_secs_f64(),
        latencies.describe(),
        hits as f64 / latencies.0.len().max(1) as f64,
    ));
    summarize(format!(
        "writers during that search ({WRITERS} threads, single calls, {:.1} s): {:.0} write \
         calls/s in total = {:.0} add_triple/s + {:.0} observe/s + {:.0} add_units/s (2 units \
         each, {:.0} chunks/s); {} errors; stats grew by {} entities, {} relations, {} \
         observations, {} chunks; afterwards sync waited {} for the index to catch up",
        secs,
        calls as f64 / secs,
        get(&counts.triples) as f64 / secs,
        get(&counts.observations) as f64 / secs,
        get(&counts.unit_calls) as f64 / secs,
        get(&counts.units) as f64 / secs,
        get(&counts.errors),
        after.entities - before.entities,
        after.relations - before.relations,
        after.observations - before.observations,
        after.chunks - before.chunks,
        ms(lag),
    ));
}

// ----- 5. write→visible delay ------------------------------------------------------------

fn visibility(memory: &Memory, syn: &Synthetic) {
    let options = SearchOptions::new().depth(0).limit(10);
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64 % 1_000_000);
    let mut rng = StdRng::seed_from_u64(0x715);
    let (mut delays, mut writes, mut polls) = (Samples::default(), Samples::default(), 0usize);
    let (mut triple_delays, mut unit_delays) = (Samples::default(), Samples::default());
    let mut timeouts = 0usize;
    for i in 0..VISIBILITY_SAMPLES {
        // A random phase against the indexer's polling.
        std::thread::sleep(Duration::from_micros(rng.random_range(0..25_000)));
        let token = format!("probe{nonce}x{i}");
        let start = Instant::now();
        let target = if i % 2 == 0 {
            let other = &syn.entities[syn.pick_entity(&mut rng, 0.0)];
            let subject = format!("Probe {token}");
            Target::Relation(
                memory
                    .add_triple((subject.as_str(), "mentions", other.as_str()))
                    .expect("add_triple"),
            )
        } else {
            let words: Vec<&str> = (0..30).map(|_| syn.text_word(&mut rng)).collect();
            let text = format!(
                "{} {token} {}",
                words[..15].join(" "),
                words[15..].join(" ")
            );
            let (_, ids) = memory
                .add_units("probe", &[Unit::new(text)])
                .expect("add_units");
            Target::Chunk(ids[0])
        };
        let committed = Instant::now();
        writes.push(committed - start);
        loop {
            polls += 1;
            let hits = memory.search(&token, &options).expect("search");
            if hits.iter().any(|h| h.target == target) {
                let delay = committed.elapsed();
                delays.push(delay);
                if i % 2 == 0 {
                    triple_delays.push(delay);
                } else {
                    unit_delays.push(delay);
                }
                break;
            }
            if committed.elapsed() > VISIBILITY_TIMEOUT {
                timeouts += 1;
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    let sorted = delays.sorted();
    let p = |x| {
        if sorted.is_empty() {
            "-".into()
        } else {
            ms(percentile(&sorted, x))
        }
    };
    summarize(format!(
        "write→visible delay (background indexer, no sync; from the write call's return to \
         the first BM25 search (depth 0, poll every 0.2 ms) that finds it; {} samples, half \
         add_triple, half add_units of one unit, 0-25 ms random pause before each): p50 {}, \
         p90 {}, p99 {}, max {}; triples {}; units {}; {timeouts} timed out after {:.0} s; \
         {polls} searches polled; the write calls themselves: {} (target <= 100 ms)",
        delays.0.len(),
        p(50.0),
        p(90.0),
        p(99.0),
        ms(delays.max()),
        triple_delays.describe(),
        unit_delays.describe(),
        VISIBILITY_TIMEOUT.as_secs_f64(),
        writes.describe(),
    ));
}

// ----- 6. with 384-dimensional vectors ---------------------------------------------------

const VECTOR_DIMENSION: usize = 384;

fn vector_options() -> Options {
    let embedder = HashingEmbedder::new(VECTOR_DIMENSION).expect("embedder");
    Options::new().embedder(std::sync::Arc::new(embedder))
}

/// The dataset with vectors for its chunks: a copy of the cached files without their
/// index, opened with the embedder, so the indexer rebuilds the index and the backfill
/// pass embeds every chunk; kept for later runs.
fn ensure_vector_dataset(db: &Path) -> PathBuf {
    let path = db.with_file_name(format!("synthetic-v{GENERATOR_VERSION}-hash384.db"));
    let done = with_suffix(&path, ".done");
    if done.exists() && path.exists() {
        println!("reusing {}", path.display());
        return path;
    }
    remove_memory_files(&path);
    let start = Instant::now();
    for suffix in ["", "-wal"] {
        let from = with_suffix(db, suffix);
        if from.exists() {
            std::fs::copy(&from, with_suffix(&path, suffix)).unwrap();
        }
    }
    // The copy was written without an embedder: opening it with one asks for the
    // backfill pass (`src/index/backfill.rs`), which `sync` waits for.
    let memory = Memory::open_with(&path, vector_options()).expect("open with embedder");
    let wait = sync_fully(&memory);
    let stats = memory.stats().unwrap();
    drop(memory);
    let vectors = stored_vectors(&path).len();
    assert_eq!(vectors, CHUNKS, "one vector per chunk");
    std::fs::write(&done, format!("{stats:?}\n")).unwrap();
    summarize(format!(
        "vector dataset: {} built in {:.1} s (re-index with embedding waited {:.1} s): {} \
         vectors of {VECTOR_DIMENSION} values; db {}",
        path.display(),
        start.elapsed().as_secs_f64(),
        wait.as_secs_f64(),
        vectors,
        mib(dir_size(&path) + dir_size(&with_suffix(&path, "-wal"))),
    ));
    path
}

/// Every stored vector, decoded as `src/index/vectors.rs` does.
fn stored_vectors(db: &Path) -> Vec<(i64, Vec<f32>)> {
    let conn = Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, data FROM vector ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
        .unwrap();
    rows.map(|row| {
        let (id, data) = row.unwrap();
        let values = data
            .as_chunks::<4>()
            .0
            .iter()
            .map(|b| f32::from_le_bytes(*b))
            .collect();
        (id, values)
    })
    .collect()
}

fn with_vectors(db: &Path, queries: &[Query], passes: usize) {
    let memory = Memory::open_with(db, vector_options()).expect("open with embedder");
    sync_fully(&memory);
    let on = hybrid_options(DEPTH);
    let off = hybrid_options(DEPTH).vector_weight(0.0);
    // Warm-up (the first search loads the 100,000 vectors), then interleaved passes.
    let t = Instant::now();
    memory.search("warm up", &on).expect("search");
    let load = t.elapsed();
    for q in queries {
        std::hint::black_box(memory.search(&q.text, &on).expect("search"));
        std::hint::black_box(memory.search(&q.text, &off).expect("search"));
    }
    let (mut with, mut without) = (Samples::default(), Samples::default());
    for _ in 0..passes {
        for q in queries {
            let start = Instant::now();
            std::hint::black_box(memory.search(&q.text, &on).expect("search"));
            with.push(start.elapsed());
            let start = Instant::now();
            std::hint::black_box(memory.search(&q.text, &off).expect("search"));
            without.push(start.elapsed());
        }
    }
    summarize(format!(
        "hybrid search with {CHUNKS} chunk vectors (HashingEmbedder 384; depth {DEPTH}, limit \
         {LIMIT}, {} queries x {passes} passes, interleaved): vector channel on {}; off {}; \
         first search (loads the vectors) {} (target with a real model, its query embedding \
         included: p50 <= 5 ms, p99 <= 15 ms)",
        queries.len(),
        with.describe(),
        without.describe(),
        ms(load),
    ));

    // The channel's own parts: the query's embedding, then the scan, fast and exact.
    let embedder = HashingEmbedder::new(VECTOR_DIMENSION).expect("embedder");
    let mut index = VectorIndex::new(VECTOR_DIMENSION);
    for (id, values) in stored_vectors(db) {
        index
            .push(id, cairn::ndarray::ArrayView1::from(&values))
            .unwrap();
    }
    let (mut embed, mut fast, mut exact) =
        (Samples::default(), Samples::default(), Samples::default());
    let mut recalls = [0.0_f64; 3];
    let k = LIMIT * 5;
    for _ in 0..passes {
        for q in queries {
            let start = Instant::now();
            let row = embedder.embed_query(q.text.as_str()).expect("embed");
            embed.push(start.elapsed());
            let query = row.view();
            let start = Instant::now();
            let got = index.top_k(query, k);
            fast.push(start.elapsed());
            let start = Instant::now();
            let want = index.top_k_exact(query, k);
            exact.push(start.elapsed());
            for (slot, n) in recalls.iter_mut().zip([10, 50, 100]) {
                let got_n = if n == k {
                    got.clone()
                } else {
                    index.top_k(query, n)
                };
                *slot += recall(&want[..n.min(want.len())], &got_n);
            }
        }
    }
    let samples = (queries.len() * passes) as f64;
    summarize(format!(
        "vector channel alone on those {} vectors, k = {k}: query embedding (HashingEmbedder) \
         {}; fast scan {}; exact scan {}; exact/fast p50 {:.1}x, p99 {:.1}x; fast vs exact \
         recall@10 {:.3}, @50 {:.3}, @100 {:.3}",
        index.len(),
        embed.describe(),
        fast.describe(),
        exact.describe(),
        exact.p(50.0).as_secs_f64() / fast.p(50.0).as_secs_f64(),
        exact.p(99.0).as_secs_f64() / fast.p(99.0).as_secs_f64(),
        recalls[0] / samples,
        recalls[1] / samples,
        recalls[2] / samples,
    ));
}

/// The real model for queries over the file's hashing vectors: the id of the hashing
/// embedder (so the file, written with it, accepts this one), its rows for passages, the
/// model's vector for a query. Only latency means anything with it, not ranking. It holds
/// the model loaded with each query precision; `current` says which one embeds, so one
/// memory compares them query by query.
#[cfg(feature = "model")]
struct ModelQueries {
    passages: HashingEmbedder,
    models: Vec<cairn::SentenceEmbedder>,
    current: std::sync::atomic::AtomicUsize,
}

#[cfg(feature = "model")]
impl ModelQueries {
    fn model(&self) -> &cairn::SentenceEmbedder {
        &self.models[self.current.load(Ordering::Relaxed)]
    }
}

#[cfg(feature = "model")]
impl Embedder for ModelQueries {
    fn id(&self) -> &str {
        self.passages.id()
    }

    fn dimension(&self) -> usize {
        self.passages.dimension()
    }

    fn embed_passages(&self, texts: &[&str]) -> cairn::Result<cairn::ndarray::Array2<f32>> {
        self.passages.embed_passages(texts)
    }

    fn embed_query(&self, query: &str) -> cairn::Result<cairn::ndarray::Array1<f32>> {
        let start = Instant::now();
        let row = self.model().embed_query(query);
        phases::embedded(start.elapsed());
        row
    }
}

/// Where a search's time goes: the fields of the `cairn::search` trace event
/// (`src/retrieve/mod.rs`: lexical, graph, vector channel, fusion and re-ranking, texts)
/// summed over the searches since [`phases::take`], caught by a minimal subscriber; the
/// query's embedding is timed by the bench embedder itself, so the vector channel's scan
/// is its lap less the embedding.
#[cfg(feature = "model")]
mod phases {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing::field::{Field, Visit};
    use tracing::span;

    /// Microseconds of each phase.
    #[derive(Default, Clone, Copy, Debug)]
    pub struct Phases {
        pub lexical: u64,
        pub graph: u64,
        /// The vector channel's lap: the query's embedding (the first time) and the scan.
        pub vector: u64,
        pub rank: u64,
        pub render: u64,
        /// The graph channel's steps (within `graph`).
        pub seeds: u64,
        pub bfs: u64,
        pub passages: u64,
        /// Nanoseconds in the bench embedder's `embed_query`.
        pub embed_ns: u64,
    }

    static SUM: Mutex<Phases> = Mutex::new(Phases {
        lexical: 0,
        graph: 0,
        vector: 0,
        rank: 0,
        render: 0,
        seeds: 0,
        bfs: 0,
        passages: 0,
        embed_ns: 0,
    });
    static EMBED_NS: AtomicU64 = AtomicU64::new(0);

    /// Adds one query embedding's time.
    pub fn embedded(d: std::time::Duration) {
        EMBED_NS.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The phases since the last call, and starts again.
    pub fn take() -> Phases {
        let mut sum = std::mem::take(&mut *SUM.lock().unwrap());
        sum.embed_ns = EMBED_NS.swap(0, Ordering::Relaxed);
        sum
    }

    struct Fields(Phases);

    impl Visit for Fields {
        fn record_u64(&mut self, field: &Field, value: u64) {
            let slot = match field.name() {
                "lexical_us" => &mut self.0.lexical,
                "graph_us" => &mut self.0.graph,
                "vector_us" => &mut self.0.vector,
                "rank_us" => &mut self.0.rank,
                "render_us" => &mut self.0.render,
                "seeds_us" => &mut self.0.seeds,
                "bfs_us" => &mut self.0.bfs,
                "passages_us" => &mut self.0.passages,
                _ => return,
            };
            *slot += value;
        }

        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }

    /// Listens to the `cairn::search` events only.
    struct Collector;

    impl tracing::Subscriber for Collector {
        fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
            metadata.target() == "cairn::search"
        }
        fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
            span::Id::from_u64(1)
        }
        fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
        fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = Fields(Phases::default());
            event.record(&mut fields);
            let mut sum = SUM.lock().unwrap();
            sum.lexical += fields.0.lexical;
            sum.graph += fields.0.graph;
            sum.vector += fields.0.vector;
            sum.rank += fields.0.rank;
            sum.render += fields.0.render;
            sum.seeds += fields.0.seeds;
            sum.bfs += fields.0.bfs;
            sum.passages += fields.0.passages;
        }
        fn enter(&self, _: &span::Id) {}
        fn exit(&self, _: &span::Id) {}
    }

    /// Installs the collector for the process (once; later calls do nothing).
    pub fn install() {
        let _ = tracing::subscriber::set_global_default(Collector);
    }
}

#[cfg(feature = "model")]
fn with_model_queries(db: &Path, queries: &[Query], passes: usize) {
    let Some(dir) = std::env::var_os("CAIRN_MODEL") else {
        println!("CAIRN_MODEL not set: no search with the real model's query embedding");
        return;
    };
    phases::install();
    let threads: Vec<usize> = std::env::var("CAIRN_SEARCH_MODEL_THREADS")
        .ok()
        .map_or_else(
            || vec![2, 1],
            |v| {
                v.split(',')
                    .map(|t| t.trim().parse().expect("threads"))
                    .collect()
            },
        );
    for threads in threads {
        with_model_queries_on(db, queries, passes, &dir, threads);
    }
}

/// The query precisions compared, in order: `CAIRN_SEARCH_PRECISIONS=f32,bf16,int8` (the
/// default). With one, every search reads the same model's weights, as in a process with
/// one embedder; with several, the others' weights pass through the cache between two
/// queries of each.
#[cfg(feature = "model")]
fn precisions() -> Vec<cairn::QueryPrecision> {
    let names = std::env::var("CAIRN_SEARCH_PRECISIONS").unwrap_or_default();
    let names = if names.trim().is_empty() {
        "f32,bf16,int8".to_owned()
    } else {
        names
    };
    names
        .split(',')
        .map(|name| match name.trim() {
            "f32" => cairn::QueryPrecision::F32,
            "bf16" => cairn::QueryPrecision::Bf16,
            "int8" => cairn::QueryPrecision::Int8,
            other => panic!("CAIRN_SEARCH_PRECISIONS: unknown precision {other:?}"),
        })
        .collect()
}

/// [`with_model_queries`] with the model on `threads` threads: per query, the search
/// with each query precision, the search without the vector channel, and each
/// precision's embedding alone, interleaved; then where the time of a search went.
#[cfg(feature = "model")]
fn with_model_queries_on(
    db: &Path,
    queries: &[Query],
    passes: usize,
    dir: &std::ffi::OsStr,
    threads: usize,
) {
    let precisions = precisions();
    let models = precisions
        .iter()
        .map(|&precision| {
            cairn::SentenceEmbedder::builder(dir)
                .threads(threads)
                .query_precision(precision)
                .build()
                .expect("CAIRN_MODEL: the model")
        })
        .collect();
    let embedder = std::sync::Arc::new(ModelQueries {
        passages: HashingEmbedder::new(VECTOR_DIMENSION).expect("embedder"),
        models,
        current: std::sync::atomic::AtomicUsize::new(0),
    });
    assert_eq!(embedder.model().dimension(), VECTOR_DIMENSION);
    let memory = Memory::open_with(db, Options::new().embedder(embedder.clone()))
        .expect("open with the model for queries");
    sync_fully(&memory);
    let on = hybrid_options(DEPTH);
    let off = hybrid_options(DEPTH).vector_weight(0.0);
    let n = precisions.len();
    for q in queries {
        for m in 0..n {
            embedder.current.store(m, Ordering::Relaxed);
            std::hint::black_box(memory.search(&q.text, &on).expect("search"));
        }
    }
    let mut with: Vec<Samples> = (0..n).map(|_| Samples::default()).collect();
    let mut embed: Vec<Samples> = (0..n).map(|_| Samples::default()).collect();
    // Per precision: lexical, graph, embedding, vector scan, fusion + re-rank, texts,
    // the rest (snapshot, locks, the gaps between laps).
    // Then the graph's own steps: seeds, breadth-first expansion, passages.
    let mut parts: Vec<[Samples; 10]> = (0..n).map(|_| Default::default()).collect();
    let mut without = Samples::default();
    let mut cosines = vec![1.0_f32; n];
    for _ in 0..passes {
        for q in queries {
            for m in 0..n {
                embedder.current.store(m, Ordering::Relaxed);
                phases::take();
                let start = Instant::now();
                std::hint::black_box(memory.search(&q.text, &on).expect("search"));
                let total = start.elapsed();
                with[m].push(total);
                let p = phases::take();
                let us = |v: u64| Duration::from_micros(v);
                let embedding = Duration::from_nanos(p.embed_ns);
                let scan = us(p.vector).saturating_sub(embedding);
                let listed = us(p.lexical + p.graph + p.rank + p.render) + embedding + scan;
                let values = [
                    us(p.lexical),
                    us(p.graph),
                    embedding,
                    scan,
                    us(p.rank),
                    us(p.render),
                    total.saturating_sub(listed),
                    us(p.seeds),
                    us(p.bfs),
                    us(p.passages),
                ];
                for (samples, value) in parts[m].iter_mut().zip(values) {
                    samples.push(value);
                }
            }
            let start = Instant::now();
            std::hint::black_box(memory.search(&q.text, &off).expect("search"));
            without.push(start.elapsed());
            let mut rows = Vec::with_capacity(n);
            for (m, samples) in embed.iter_mut().enumerate() {
                let start = Instant::now();
                let row = embedder.models[m].embed_query(&q.text).expect("embed");
                samples.push(start.elapsed());
                rows.push(row);
            }
            for (m, row) in rows.iter().enumerate() {
                cosines[m] = cosines[m].min(row.dot(&rows[0]));
            }
        }
    }
    phases::take();
    let names = [
        "lexical",
        "graph",
        "embedding",
        "vector scan",
        "fusion+rerank",
        "texts",
        "rest",
        "(graph: seeds",
        "bfs",
        "passages)",
    ];
    let first = precisions[0];
    for (m, precision) in precisions.iter().enumerate() {
        let breakdown: Vec<String> = names
            .iter()
            .zip(&parts[m])
            .map(|(name, s)| format!("{name} {} (mean {})", ms(s.p(50.0)), ms(s.mean())))
            .collect();
        summarize(format!(
            "hybrid search with the real model's query embedding (all-MiniLM-L6-v2 on \
             {threads} thread(s), query weights {precision:?}, {}) over {CHUNKS} chunk \
             vectors (HashingEmbedder 384 stand-ins; depth {DEPTH}, limit {LIMIT}, {} queries \
             x {passes} passes, interleaved with the precisions {precisions:?}): {}; the \
             query's embedding alone {}; p50 search / {first:?} search {:.2}, embedding / \
             {first:?} embedding {:.2}; min cosine to the {first:?} query vector {:.5}; where \
             a search went (p50 of each part): {} (target: p50 <= 5 ms, p99 <= 15 ms)",
            std::path::Path::new(&dir).display(),
            queries.len(),
            with[m].describe(),
            embed[m].describe(),
            with[m].p(50.0).as_secs_f64() / with[0].p(50.0).as_secs_f64(),
            embed[m].p(50.0).as_secs_f64() / embed[0].p(50.0).as_secs_f64(),
            cosines[m],
            breakdown.join(", "),
        ));
    }
    summarize(format!(
        "the same searches without the vector channel (no query embedding; {threads} \
         thread(s)): {}",
        without.describe()
    ));
}

// ----- main ---------------------------------------------------------------------------

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let parts = env_parts();
    let part = |name: &str| parts.iter().any(|p| p == name);
    let passes = env_passes();
    let dir = bench_dir();

    let syn = Synthetic::new();
    let queries = syn.queries();
    let db = ensure_dataset(&syn, &dir);

    if part("hybrid") || part("fts5") {
        let memory = open(&db);
        sync_fully(&memory);
        if part("hybrid") {
            hybrid(&mut criterion, &memory, &syn, &queries, passes);
        }
        if part("fts5") {
            let fts = ensure_fts(&db);
            bm25_vs_fts5(&mut criterion, &memory, &fts, &queries, passes);
        }
    }

    if part("concurrent") || part("visible") {
        // These write: work on a copy of the cached files.
        let work = dir.join(format!("work-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let copy = work.join("synthetic.db");
        let t = Instant::now();
        for suffix in ["", "-wal"] {
            let from = with_suffix(&db, suffix);
            if from.exists() {
                std::fs::copy(&from, with_suffix(&copy, suffix)).unwrap();
            }
        }
        copy_dir(&with_suffix(&db, ".index"), &with_suffix(&copy, ".index")).unwrap();
        println!(
            "copied the memory to {} in {}",
            copy.display(),
            ms(t.elapsed())
        );
        {
            let memory = open(&copy);
            sync_fully(&memory);
            if part("concurrent") {
                concurrent(&memory, &syn, &queries, passes);
            }
            if part("visible") {
                visibility(&memory, &syn);
            }
        }
        let _ = std::fs::remove_dir_all(&work);
    }

    if part("vectors") || part("model") {
        let with = ensure_vector_dataset(&db);
        if part("vectors") {
            with_vectors(&with, &queries, passes);
        }
        #[cfg(feature = "model")]
        with_model_queries(&with, &queries, passes);
    }

    criterion.final_summary();
    common::print_summary();
}
