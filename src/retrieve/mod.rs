//! Retrieval: a query string in, ranked hits out.
//!
//! Today this is the BM25 channel over the derived index. Graph expansion, vectors,
//! fusion and context rendering (DESIGN.md, "Retrieval") build on these types.

use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;
use crate::id::{ChunkId, EntityId, ObservationId, RelationId};
use crate::index::Bm25Hit;
use crate::index::schema::DocKind;

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
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            limit: 10,
            kinds: Vec::new(),
            read_your_writes: false,
            name_boost: 2.0,
        }
    }
}

impl SearchOptions {
    /// Ten hits of every kind, no waiting for the index.
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

    /// How much more a match in a name counts than a match in text (default 2).
    pub fn name_boost(mut self, boost: f32) -> Self {
        self.name_boost = boost;
        self
    }

    pub(crate) fn doc_kinds(&self) -> Vec<DocKind> {
        self.kinds.iter().map(|k| k.doc_kind()).collect()
    }
}

/// Turns BM25 matches into hits with their text; matches whose rows were deleted after
/// the index saw them are skipped.
pub(crate) fn bm25_hits(conn: &Connection, matches: &[Bm25Hit]) -> Result<Vec<Hit>> {
    let mut hits = Vec::with_capacity(matches.len());
    for (i, m) in matches.iter().enumerate() {
        let Some((target, text)) = render(conn, m.kind, m.id)? else {
            continue;
        };
        hits.push(Hit {
            target,
            score: m.score,
            text,
            why: vec![Reason::Bm25 {
                rank: i + 1,
                score: m.score,
            }],
        });
    }
    Ok(hits)
}

fn render(conn: &Connection, kind: DocKind, id: i64) -> Result<Option<(Target, String)>> {
    let (target, sql) = match kind {
        DocKind::Entity => (
            Target::Entity(EntityId::from_raw(id)),
            "SELECT name || coalesce(' (' || kind || ')', '') || coalesce(': ' || summary, '') FROM entity WHERE id = ?1",
        ),
        DocKind::Relation => (
            Target::Relation(RelationId::from_raw(id)),
            "SELECT s.name || ' ' || r.predicate || ' ' || o.name FROM relation r
             JOIN entity s ON s.id = r.subject_id JOIN entity o ON o.id = r.object_id WHERE r.id = ?1",
        ),
        DocKind::Observation => (
            Target::Observation(ObservationId::from_raw(id)),
            "SELECT e.name || ': ' || o.text FROM observation o JOIN entity e ON e.id = o.entity_id WHERE o.id = ?1",
        ),
        DocKind::Chunk => (Target::Chunk(ChunkId::from_raw(id)), "SELECT text FROM chunk WHERE id = ?1"),
    };
    let text: Option<String> = conn
        .prepare_cached(sql)?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(text.map(|t| (target, t)))
}
