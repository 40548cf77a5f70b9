//! Retrieval: a query string in, ranked hits out.
//!
//! 1. BM25 over the derived index finds matches;
//! 2. the entities among them, the ends of matched relations and the entities of matched
//!    observations become seeds;
//! 3. breadth-first expansion over relations from the seeds ([`bfs`]);
//! 4. with an embedder, the rows nearest the query's vector (embedded once per search,
//!    [`QueryVector`]);
//! 5. the ranked lists are fused ([`fusion`]), re-ranked, filtered;
//! 6. [`context`] renders the result within a token budget.

pub(crate) mod bfs;
pub(crate) mod context;
pub(crate) mod filter;
pub(crate) mod fusion;
pub(crate) mod lexical;
pub(crate) mod options;
pub(crate) mod passages;
pub(crate) mod provenance;
pub(crate) mod rerank;

use std::collections::HashMap;

use ndarray::{Array1, ArrayView1};
use rusqlite::Connection;

use crate::error::Result;
use crate::id::{ChunkId, EntityId, ObservationId, RelationId};
use crate::index::schema::DocKind;
use crate::index::{Bm25Hit, SearchIndex};
pub use crate::kinds::HitKind;
use crate::time::Timestamp;
use bfs::{Expansion, Reached, Seed};
use fusion::Channel;
pub use options::{Fusion, SearchOptions};

/// What a hit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[non_exhaustive]
pub enum Target {
    /// An entity.
    Entity(EntityId),
    /// A relation (triple).
    Relation(RelationId),
    /// An observation.
    Observation(ObservationId),
    /// A chunk of a document.
    Chunk(ChunkId),
}

/// Why a hit was found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub enum Reason {
    /// Matched the query's words; `rank` is 1 for the best BM25 match.
    Bm25 {
        /// 1-based rank among the BM25 matches.
        rank: usize,
        /// The BM25 score.
        score: f32,
    },
    /// Its embedding is among the nearest to the query's.
    Vector {
        /// 1-based rank among the nearest vectors.
        rank: usize,
        /// Cosine similarity with the query.
        similarity: f32,
    },
    /// Reached by graph expansion, `distance` relations away from `seed`.
    Graph {
        /// Hops from the matched text (1: a relation of a matched entity).
        distance: u32,
        /// The entity the expansion started from.
        seed: EntityId,
    },
}

/// One search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    /// What was found.
    pub target: Target,
    /// Its fused score (higher is better).
    pub score: f32,
    /// Its text as a prompt would show it.
    pub text: String,
    /// Why it was found.
    pub why: Vec<Reason>,
}

/// The best matches the graph expands from, at least (more when the limit is higher).
const SEEDS: usize = 10;

/// The whole pipeline; `conn` reads one snapshot of the file.
pub(crate) fn search(
    conn: &Connection,
    index: &SearchIndex,
    query: &str,
    options: &SearchOptions,
) -> Result<Vec<Hit>> {
    // Re-scoring lifts matches from deep in the BM25 list, and filters drop hits after
    // fusion: both need a deeper candidate list than the answer.
    let (shallow, deep) = (5, 15);
    let depth_factor = if options.filter.is_empty() {
        shallow
    } else {
        deep
    };
    let mut vector = QueryVector::new(index, query, options);
    let (hits, hidden) = search_at(conn, index, query, options, depth_factor, &mut vector)?;
    // Ended relations are left out by default, which a search cannot foresee; when they
    // left the answer short, look as deep as a filtered search once.
    if hits.len() < options.limit && hidden > 0 && depth_factor < deep {
        return Ok(search_at(conn, index, query, options, deep, &mut vector)?.0);
    }
    Ok(hits)
}

/// The query's vector for the vector channel, embedded when the channel first needs it
/// and kept for the deeper second look of the same search.
///
/// Not overlapped with the lexical and graph channels: embedding the query on a thread of
/// its own while they ran was measured on the 2-core machine and did not pay (the model
/// already uses both cores; `docs/benchmarks.md`, "Vector search").
struct QueryVector<'a> {
    /// `None` when there is no vector channel (no embedder, or a zero weight).
    wanted: Option<(&'a SearchIndex, &'a str)>,
    ready: Option<Array1<f32>>,
}

impl<'a> QueryVector<'a> {
    fn new(index: &'a SearchIndex, query: &'a str, options: &SearchOptions) -> Self {
        let wanted =
            (options.vector_weight > 0.0 && index.has_embedder()).then_some((index, query));
        QueryVector {
            wanted,
            ready: None,
        }
    }

    /// The vector, embedding the query the first time; `None` when there is no vector
    /// channel.
    fn row(&mut self) -> Result<Option<ArrayView1<'_, f32>>> {
        let Some((index, query)) = self.wanted else {
            return Ok(None);
        };
        if self.ready.is_none() {
            self.ready = index.embed_query(query)?;
        }
        Ok(self.ready.as_ref().map(|row| row.view()))
    }
}

/// [`search`] with `depth_factor` candidates per wanted hit; also tells how many
/// ranked targets the filter left out.
fn search_at(
    conn: &Connection,
    index: &SearchIndex,
    query: &str,
    options: &SearchOptions,
    depth_factor: usize,
    vector: &mut QueryVector<'_>,
) -> Result<(Vec<Hit>, usize)> {
    let candidates = options.limit.saturating_mul(depth_factor).max(50);
    let kinds = options.doc_kinds();
    let mut clock = Laps::start();
    let matches = lexical::matches(conn, index, query, &kinds, candidates, options)?;
    let lexical_us = clock.lap();
    let mut channels = vec![bm25_channel(&matches, options.bm25_weight)];
    let mut graph_laps = GraphLaps::default();
    if options.depth > 0 && options.graph_weight > 0.0 {
        // Seeds come from matches of every kind, whatever kinds the caller wants back.
        let all_matches;
        let seed_matches = if kinds.is_empty() {
            &matches
        } else {
            all_matches = lexical::matches(conn, index, query, &[], candidates, options)?;
            &all_matches
        };
        let seeds = &seed_matches[..seed_matches.len().min(options.limit.max(SEEDS))];
        channels.push(graph_channel(
            conn,
            seeds,
            &kinds,
            options,
            &mut graph_laps,
        )?);
    }
    let graph_us = clock.lap();
    if let Some(row) = vector.row()?
        && let Some(nearest) = index.nearest(conn, row, candidates)?
    {
        channels.push(vector_channel(nearest, &kinds, options.vector_weight));
    }
    let vector_us = clock.lap();
    let ranked = fusion::fuse(channels, options.fusion, order_key);
    let ranked = rerank::rerank(conn, ranked)?;
    let rank_us = clock.lap();
    let mut hits = Vec::with_capacity(options.limit);
    let mut ranked = ranked.into_iter().peekable();
    let (now, mut hidden) = (Timestamp::now(), 0);
    // Texts and what the filter needs are read a window at a time (one statement per
    // kind), and only as far down the ranking as filtered-out or deleted targets make
    // necessary.
    while hits.len() < options.limit && ranked.peek().is_some() {
        let window: Vec<_> = ranked.by_ref().take(options.limit - hits.len()).collect();
        let targets: Vec<Target> = window.iter().map(|(target, _, _)| *target).collect();
        let texts = render_all(conn, targets.iter().copied())?;
        let facts = options.filter.read(conn, &targets)?;
        for (target, score, why) in window {
            if !options.filter.admits(&facts, target, now) {
                hidden += 1;
                continue;
            }
            // A target deleted since it was indexed renders as nothing and is skipped.
            if let Some(text) = texts.get(&target) {
                let validity = facts.get(&target).and_then(|p| p.validity_label());
                let text = match validity {
                    Some(label) if options.filter.history => format!("{text} {label}"),
                    _ => text.clone(),
                };
                hits.push(Hit {
                    target,
                    score,
                    text,
                    why,
                });
            }
        }
    }
    tracing::debug!(
        target: "cairn::search",
        query_bytes = query.len(),
        candidates,
        lexical_us,
        graph_us,
        seeds_us = graph_laps.seeds,
        bfs_us = graph_laps.bfs,
        passages_us = graph_laps.passages,
        vector_us,
        rank_us,
        render_us = clock.lap(),
        hits = hits.len(),
        "search"
    );
    Ok((hits, hidden))
}

/// Microseconds of the graph channel's steps, for the search's trace event.
#[derive(Debug, Default, Clone, Copy)]
struct GraphLaps {
    seeds: u64,
    bfs: u64,
    passages: u64,
}

/// Time between successive points of one search, for its trace event.
struct Laps(std::time::Instant);

impl Laps {
    fn start() -> Laps {
        Laps(std::time::Instant::now())
    }

    /// Microseconds since the last lap (or the start).
    fn lap(&mut self) -> u64 {
        let now = std::time::Instant::now();
        let lap = now - self.0;
        self.0 = now;
        crate::time::micros(lap)
    }
}

/// `ids` as a JSON array, for statements that take a list through `json_each`.
pub(crate) fn json_ids(ids: impl Iterator<Item = i64>) -> String {
    let list: Vec<String> = ids.map(|id| id.to_string()).collect();
    format!("[{}]", list.join(","))
}

/// Runs `sql` (taking a JSON array of ids as `?1`, returning `(id, value)` rows) for the
/// ids of `kind` among `targets`.
fn rows_by_id<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &str,
    ids: &[i64],
) -> Result<Vec<(i64, T)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([json_ids(ids.iter().copied())], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn bm25_channel(matches: &[Bm25Hit], weight: f32) -> Channel {
    let hits = matches
        .iter()
        .filter_map(|m| Some((target_of(m.kind, m.id)?, m.score)))
        .enumerate()
        .map(|(i, (target, score))| {
            let why = Reason::Bm25 { rank: i + 1, score };
            (target, score, why)
        })
        .collect();
    Channel { weight, hits }
}

fn graph_channel(
    conn: &Connection,
    seed_matches: &[Bm25Hit],
    kinds: &[DocKind],
    options: &SearchOptions,
    laps: &mut GraphLaps,
) -> Result<Channel> {
    let mut clock = Laps::start();
    // What the matches name is read once, for the seeds and for the passages alike.
    let named = passages::entities_named_by(conn, seed_matches)?;
    let seeds = seeds(seed_matches, &named);
    laps.seeds = clock.lap();
    let how = Expansion {
        depth: options.depth,
        fan_out: options.fan_out,
        decay: options.decay,
        want: options.limit,
    };
    let (relations, entities) = bfs::expand(conn, &seeds, how)?;
    laps.bfs = clock.lap();
    let mut graph: Vec<(Target, Reached)> = relations
        .into_iter()
        .map(|(id, r)| (Target::Relation(id), r))
        .chain(
            entities
                .into_iter()
                .filter(|(_, r)| r.distance > 0)
                .map(|(id, r)| (Target::Entity(id), r)),
        )
        .filter(|(target, _)| wanted(kinds, *target))
        .collect();
    if wanted(kinds, Target::Chunk(ChunkId::from_raw(0))) {
        for (chunk, passage) in passages::expand(conn, seed_matches, &named, options.decay)? {
            let reached = Reached {
                distance: 1,
                seed: passage.via,
                score: passage.score,
            };
            graph.push((Target::Chunk(chunk), reached));
        }
    }
    laps.passages = clock.lap();
    graph.sort_by(|a, b| {
        b.1.score
            .total_cmp(&a.1.score)
            .then(a.1.distance.cmp(&b.1.distance))
            .then_with(|| order_key(a.0).cmp(&order_key(b.0)))
    });
    let hits = graph
        .into_iter()
        .map(|(target, reached)| {
            let why = Reason::Graph {
                distance: reached.distance,
                seed: reached.seed,
            };
            (target, reached.score, why)
        })
        .collect();
    Ok(Channel {
        weight: options.graph_weight,
        hits,
    })
}

fn vector_channel(nearest: Vec<(DocKind, i64, f32)>, kinds: &[DocKind], weight: f32) -> Channel {
    let hits = nearest
        .into_iter()
        .filter(|(kind, _, _)| kinds.is_empty() || kinds.contains(kind))
        .filter_map(|(kind, id, similarity)| Some((target_of(kind, id)?, similarity)))
        .enumerate()
        .map(|(i, (target, similarity))| {
            let why = Reason::Vector {
                rank: i + 1,
                similarity,
            };
            (target, similarity, why)
        })
        .collect();
    Channel { weight, hits }
}

/// Entities to expand from, with their distance from the matched text and a weight from
/// the match's rank: the matched entities themselves, and the entities other matches name
/// (`named`, from [`passages::entities_named_by`]).
fn seeds(matches: &[Bm25Hit], named: &passages::Named) -> Vec<Seed> {
    let mut seeds = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        let weight = 1.0 / (i + 1) as f32;
        let seed = |entity: i64, distance| Seed {
            entity: EntityId::from_raw(entity),
            distance,
            weight,
        };
        match m.kind {
            DocKind::Entity => seeds.push(seed(m.id, 0)),
            DocKind::Document => {}
            kind => {
                let reached = named.get(&(kind, m.id)).map_or(&[][..], Vec::as_slice);
                seeds.extend(reached.iter().map(|&e| seed(e, 1)));
            }
        }
    }
    seeds
}

fn wanted(kinds: &[DocKind], target: Target) -> bool {
    kinds.is_empty() || kinds.contains(&doc_kind_of(target))
}

fn target_of(kind: DocKind, id: i64) -> Option<Target> {
    Some(match kind {
        DocKind::Entity => Target::Entity(EntityId::from_raw(id)),
        DocKind::Relation => Target::Relation(RelationId::from_raw(id)),
        DocKind::Observation => Target::Observation(ObservationId::from_raw(id)),
        DocKind::Chunk => Target::Chunk(ChunkId::from_raw(id)),
        DocKind::Document => return None,
    })
}

fn doc_kind_of(target: Target) -> DocKind {
    match target {
        Target::Entity(_) => DocKind::Entity,
        Target::Relation(_) => DocKind::Relation,
        Target::Observation(_) => DocKind::Observation,
        Target::Chunk(_) => DocKind::Chunk,
    }
}

/// A total order for ties: by kind, then id.
fn order_key(target: Target) -> (DocKind, i64) {
    let id = match target {
        Target::Entity(id) => id.get(),
        Target::Relation(id) => id.get(),
        Target::Observation(id) => id.get(),
        Target::Chunk(id) => id.get(),
    };
    (doc_kind_of(target), id)
}

/// The prompt text of each target that still exists.
fn render_all(
    conn: &Connection,
    targets: impl Iterator<Item = Target>,
) -> Result<HashMap<Target, String>> {
    let mut ids: HashMap<DocKind, Vec<i64>> = HashMap::new();
    for target in targets {
        ids.entry(doc_kind_of(target))
            .or_default()
            .push(order_key(target).1);
    }
    let mut out = HashMap::new();
    for (kind, ids) in ids {
        let sql = match kind {
            DocKind::Entity => {
                "SELECT id, name || coalesce(' (' || kind || ')', '') || coalesce(': ' || summary, '')
                 FROM entity WHERE id IN (SELECT value FROM json_each(?1))"
            }
            DocKind::Relation => {
                "SELECT r.id, s.name || ' ' || r.predicate || ' ' || o.name FROM relation r
                 JOIN entity s ON s.id = r.subject_id JOIN entity o ON o.id = r.object_id
                 WHERE r.id IN (SELECT value FROM json_each(?1))"
            }
            DocKind::Observation => {
                "SELECT o.id, e.name || ': ' || o.text FROM observation o
                 JOIN entity e ON e.id = o.entity_id WHERE o.id IN (SELECT value FROM json_each(?1))"
            }
            DocKind::Chunk => {
                "SELECT id, text FROM chunk WHERE id IN (SELECT value FROM json_each(?1))"
            }
            DocKind::Document => continue,
        };
        for (id, text) in rows_by_id::<String>(conn, sql, &ids)? {
            if let Some(target) = target_of(kind, id) {
                out.insert(target, text);
            }
        }
    }
    Ok(out)
}
