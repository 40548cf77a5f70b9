//! Retrieval: a query string in, ranked hits out.
//!
//! 1. BM25 over the derived index finds matches;
//! 2. the entities among them, the ends of matched relations and the entities of matched
//!    observations become seeds;
//! 3. breadth-first expansion over relations from the seeds ([`bfs`]);
//! 4. the two ranked lists are fused by reciprocal rank;
//! 5. [`context`] renders the result within a token budget.
//!
//! The vector channel is not wired in yet.

pub(crate) mod bfs;
pub(crate) mod context;

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;
use crate::id::{ChunkId, EntityId, ObservationId, RelationId};
use crate::index::schema::DocKind;
use crate::index::{Bm25Hit, SearchIndex};
use bfs::{Expansion, Reached, Seed};

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

/// Which kinds of hits a search may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HitKind {
    /// Entities.
    Entity,
    /// Relations.
    Relation,
    /// Observations.
    Observation,
    /// Chunks.
    Chunk,
}

impl HitKind {
    fn doc_kind(self) -> DocKind {
        match self {
            HitKind::Entity => DocKind::Entity,
            HitKind::Relation => DocKind::Relation,
            HitKind::Observation => DocKind::Observation,
            HitKind::Chunk => DocKind::Chunk,
        }
    }
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

/// Options for [`crate::Memory::search`].
///
/// ```
/// use cairn::{HitKind, SearchOptions};
/// let options = SearchOptions::new().limit(10).kinds(&[HitKind::Chunk]).read_your_writes(true);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    pub(crate) limit: usize,
    pub(crate) kinds: Vec<HitKind>,
    pub(crate) read_your_writes: bool,
    pub(crate) name_boost: f32,
    pub(crate) depth: u32,
    pub(crate) fan_out: usize,
    pub(crate) decay: f32,
    pub(crate) graph_weight: f32,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            limit: 10,
            kinds: Vec::new(),
            read_your_writes: false,
            name_boost: 2.0,
            depth: 2,
            fan_out: 16,
            decay: 0.5,
            graph_weight: 0.5,
        }
    }
}

/// The `k` of reciprocal-rank fusion: a hit at rank `r` of a channel adds
/// `weight / (RRF_K + r)`. 60 is the value of the original RRF paper; not yet tuned here.
const RRF_K: f32 = 60.0;

impl SearchOptions {
    /// Ten hits of every kind, graph depth 2, no waiting for the index.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many hits at most.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Only these kinds (empty: all).
    pub fn kinds(mut self, kinds: &[HitKind]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }

    /// Wait until every write committed before the search is indexed.
    pub fn read_your_writes(mut self, on: bool) -> Self {
        self.read_your_writes = on;
        self
    }

    /// How many relations away from the matched text the graph expansion goes
    /// (default 2; 0 turns the graph channel off).
    pub fn depth(mut self, depth: u32) -> Self {
        self.depth = depth;
        self
    }

    /// At most this many relations are followed from any one entity (default 16), most
    /// mentioned first, so that hub entities do not flood the answer.
    pub fn fan_out(mut self, fan_out: usize) -> Self {
        self.fan_out = fan_out;
        self
    }

    /// Score factor per hop of graph expansion (default 0.5).
    pub fn decay(mut self, decay: f32) -> Self {
        self.decay = decay;
        self
    }

    /// Weight of the graph channel in the fusion, relative to BM25's 1 (default 0.5, so
    /// that a direct match outranks what expansion reached at the same rank; not yet
    /// tuned by measurement).
    pub fn graph_weight(mut self, weight: f32) -> Self {
        self.graph_weight = weight;
        self
    }

    /// How much more a match in a name counts than a match in text (default 2).
    pub fn name_boost(mut self, boost: f32) -> Self {
        self.name_boost = boost;
        self
    }

    pub(crate) fn doc_kinds(&self) -> Vec<DocKind> {
        self.kinds.iter().map(|k| k.doc_kind()).collect()
    }
}

/// The whole pipeline; `conn` reads one snapshot of the file.
pub(crate) fn search(
    conn: &Connection,
    index: &SearchIndex,
    query: &str,
    options: &SearchOptions,
) -> Result<Vec<Hit>> {
    let candidates = options.limit.saturating_mul(3).max(20);
    let kinds = options.doc_kinds();
    let matches = index.bm25(query, &kinds, candidates, options.name_boost)?;
    let mut fused: HashMap<Target, (f32, Vec<Reason>)> = HashMap::new();
    for (i, m) in matches.iter().enumerate() {
        let entry = fused.entry(target_of(m.kind, m.id)).or_default();
        entry.0 += 1.0 / (RRF_K + (i + 1) as f32);
        entry.1.push(Reason::Bm25 {
            rank: i + 1,
            score: m.score,
        });
    }
    if options.depth > 0 && options.graph_weight > 0.0 {
        // Seeds come from matches of every kind, whatever kinds the caller wants back.
        let all_matches;
        let seed_matches = if kinds.is_empty() {
            &matches
        } else {
            all_matches = index.bm25(query, &[], candidates, options.name_boost)?;
            &all_matches
        };
        let seeds = seeds(conn, seed_matches)?;
        let how = Expansion {
            depth: options.depth,
            fan_out: options.fan_out,
            decay: options.decay,
        };
        let (relations, entities) = bfs::expand(conn, &seeds, how)?;
        let mut graph: Vec<(Target, Reached)> = relations
            .into_iter()
            .map(|(id, r)| (Target::Relation(id), r))
            .chain(
                entities
                    .into_iter()
                    .filter(|(_, r)| r.distance > 0)
                    .map(|(id, r)| (Target::Entity(id), r)),
            )
            .collect();
        graph.sort_by(|a, b| {
            b.1.score
                .total_cmp(&a.1.score)
                .then(a.1.distance.cmp(&b.1.distance))
        });
        for (i, (target, reached)) in graph.into_iter().enumerate() {
            if !wanted(&kinds, target) {
                continue;
            }
            let entry = fused.entry(target).or_default();
            entry.0 += options.graph_weight / (RRF_K + (i + 1) as f32);
            entry.1.push(Reason::Graph {
                distance: reached.distance,
                seed: reached.seed,
            });
        }
    }
    let mut ranked: Vec<(Target, f32, Vec<Reason>)> = fused
        .into_iter()
        .map(|(t, (score, why))| (t, score, why))
        .collect();
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| order_key(a.0).cmp(&order_key(b.0)))
    });
    let mut hits = Vec::with_capacity(options.limit);
    for (target, score, why) in ranked {
        if hits.len() == options.limit {
            break;
        }
        if let Some(text) = render(conn, target)? {
            hits.push(Hit {
                target,
                score,
                text,
                why,
            });
        }
    }
    Ok(hits)
}

/// Entities to expand from, with their distance from the matched text and a weight from
/// the match's rank.
fn seeds(conn: &Connection, matches: &[Bm25Hit]) -> Result<Vec<Seed>> {
    let mut seeds = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        let weight = 1.0 / (i + 1) as f32;
        let mut push = |entity: i64, distance| {
            seeds.push(Seed {
                entity: EntityId::from_raw(entity),
                distance,
                weight,
            })
        };
        match m.kind {
            DocKind::Entity => push(m.id, 0),
            DocKind::Relation => {
                let ends: Option<(i64, i64)> = conn
                    .prepare_cached("SELECT subject_id, object_id FROM relation WHERE id = ?1")?
                    .query_row([m.id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some((subject, object)) = ends {
                    push(subject, 1);
                    push(object, 1);
                }
            }
            DocKind::Observation => {
                let entity: Option<i64> = conn
                    .prepare_cached("SELECT entity_id FROM observation WHERE id = ?1")?
                    .query_row([m.id], |r| r.get(0))
                    .optional()?;
                if let Some(entity) = entity {
                    push(entity, 1);
                }
            }
            DocKind::Chunk => {
                let mut stmt =
                    conn.prepare_cached("SELECT entity_id FROM mention WHERE chunk_id = ?1")?;
                let entities: Vec<i64> = stmt
                    .query_map([m.id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                for entity in entities {
                    push(entity, 1);
                }
            }
        }
    }
    Ok(seeds)
}

fn wanted(kinds: &[DocKind], target: Target) -> bool {
    kinds.is_empty() || kinds.contains(&doc_kind_of(target))
}

fn target_of(kind: DocKind, id: i64) -> Target {
    match kind {
        DocKind::Entity => Target::Entity(EntityId::from_raw(id)),
        DocKind::Relation => Target::Relation(RelationId::from_raw(id)),
        DocKind::Observation => Target::Observation(ObservationId::from_raw(id)),
        DocKind::Chunk => Target::Chunk(ChunkId::from_raw(id)),
    }
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

fn render(conn: &Connection, target: Target) -> Result<Option<String>> {
    let (id, sql) = match target {
        Target::Entity(id) => (
            id.get(),
            "SELECT name || coalesce(' (' || kind || ')', '') || coalesce(': ' || summary, '') FROM entity WHERE id = ?1",
        ),
        Target::Relation(id) => (
            id.get(),
            "SELECT s.name || ' ' || r.predicate || ' ' || o.name FROM relation r
             JOIN entity s ON s.id = r.subject_id JOIN entity o ON o.id = r.object_id WHERE r.id = ?1",
        ),
        Target::Observation(id) => (
            id.get(),
            "SELECT e.name || ': ' || o.text FROM observation o JOIN entity e ON e.id = o.entity_id WHERE o.id = ?1",
        ),
        Target::Chunk(id) => (id.get(), "SELECT text FROM chunk WHERE id = ?1"),
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id], |r| r.get(0))
        .optional()?)
}
