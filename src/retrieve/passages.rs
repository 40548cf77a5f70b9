//! The passage step of the graph channel: from what the query matched to the chunks of
//! the entities it names.
//!
//! A multi-hop question names X; BM25 finds X's passage, which names Y; the answer sits in
//! Y's passage, which shares no word with the question. This step follows that link:
//! from each of the best matches to the entities it names (a chunk's mentions and the
//! entity its document is about, a relation's ends, an observation's entity, an entity
//! itself), then to those entities' passages — the chunks of documents about them, the
//! chunks that mention them, and the chunks their relations and observations were
//! extracted from. Work is bounded: at most [`ENTITIES`] entities are expanded and at most
//! [`PER_ENTITY`] chunks are read per entity and source.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;
use crate::id::{ChunkId, EntityId};
use crate::index::Bm25Hit;
use crate::index::schema::DocKind;
use crate::retrieve::rows_by_id;

/// At most this many entities are expanded, the best-weighted first.
const ENTITIES: usize = 32;
/// At most this many chunks are read per entity from each source (documents about it,
/// chunks mentioning it, chunks its facts came from).
const PER_ENTITY: usize = 16;
/// An entity mentioned by more chunks than this is a hub (a speaker in every turn, a
/// company in every mail): its mentions say nothing about any one passage, so only the
/// documents about it and the sources of its facts are followed.
const HUB: usize = 24;

/// A match naming an entity: the matched chunk (if the match is one) and the match's
/// weight.
type Source = (Option<i64>, f32);

/// A chunk the step reached: its score, and the entity it was reached through.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Passage {
    pub(crate) score: f32,
    pub(crate) via: EntityId,
}

/// The chunks reached from `matches` (best first, with their scores), each scored by the
/// sum over its paths of `match weight × decay × entity weight`. A match's weight is its
/// score relative to the best match; an entity's weight falls with the number of
/// passages it leads to (`1 / sqrt(n)`), so a passage that is one of two an entity leads
/// to counts more than one of sixteen. A chunk is never reached from itself.
/// `named` is what [`entities_named_by`] read for `matches`.
pub(crate) fn expand(
    conn: &Connection,
    matches: &[Bm25Hit],
    named: &Named,
    decay: f32,
) -> Result<HashMap<ChunkId, Passage>> {
    let best = matches
        .iter()
        .map(|m| m.score)
        .fold(f32::MIN_POSITIVE, f32::max);
    let named = named_entities(matches, named);
    // Every entity with the matches that name it: (the matched chunk, if it is one; the
    // match's weight).
    let mut entities: HashMap<i64, Vec<Source>> = HashMap::new();
    for (m, entity) in &named {
        let source = (m.kind == DocKind::Chunk).then_some(m.id);
        entities
            .entry(*entity)
            .or_default()
            .push((source, (m.score / best).max(0.0)));
    }
    let strongest = |sources: &[Source]| sources.iter().map(|s| s.1).fold(0.0, f32::max);
    let mut order: Vec<(i64, Vec<Source>)> = entities.into_iter().collect();
    order.sort_by(|a, b| {
        strongest(&b.1)
            .total_cmp(&strongest(&a.1))
            .then(a.0.cmp(&b.0))
    });
    order.truncate(ENTITIES);

    let mut reached: HashMap<ChunkId, Passage> = HashMap::new();
    let kept = if order.is_empty() {
        Kept::default()
    } else {
        Kept::read(conn)?
    };
    for (entity, sources) in order {
        let chunks = passages_of(conn, entity, kept)?;
        let spread = (chunks.len().max(1) as f32).sqrt();
        for chunk in chunks {
            // The best match naming the entity, other than the chunk itself: a passage is
            // not evidence for itself.
            let weight = sources
                .iter()
                .filter(|(source, _)| *source != Some(chunk))
                .map(|s| s.1)
                .fold(0.0, f32::max);
            if weight <= 0.0 {
                continue;
            }
            let passage = reached.entry(ChunkId::from_raw(chunk)).or_insert(Passage {
                score: 0.0,
                via: EntityId::from_raw(entity),
            });
            passage.score += weight * decay / spread;
        }
    }
    Ok(reached)
}

/// (match, entity) for every entity a match names or is.
fn named_entities<'m>(matches: &'m [Bm25Hit], ends: &Named) -> Vec<(&'m Bm25Hit, i64)> {
    let mut out = Vec::new();
    for m in matches {
        match m.kind {
            DocKind::Entity => out.push((m, m.id)),
            DocKind::Document => {}
            kind => {
                let named = ends.get(&(kind, m.id)).map_or(&[][..], Vec::as_slice);
                out.extend(named.iter().map(|&e| (m, e)));
            }
        }
    }
    out
}

/// The entities each non-entity match names, keyed by the match's (kind, id).
pub(crate) type Named = HashMap<(DocKind, i64), Vec<i64>>;

/// The entities each non-entity match names, keyed by (kind, id): a relation's two ends,
/// an observation's entity, the entities a chunk mentions and the one its document is
/// about. One statement per kind, in a stable order.
pub(crate) fn entities_named_by(conn: &Connection, matches: &[Bm25Hit]) -> Result<Named> {
    let ids_of = |kind: DocKind| -> Vec<i64> {
        matches
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.id)
            .collect()
    };
    let mut ends = Named::new();
    for (kind, sql) in [
        (
            DocKind::Chunk,
            "SELECT chunk_id, entity_id FROM mention WHERE chunk_id IN (SELECT value FROM json_each(?1))
             UNION
             SELECT c.id, d.about_id FROM chunk c JOIN document d ON d.id = c.document_id
             WHERE c.id IN (SELECT value FROM json_each(?1)) AND d.about_id IS NOT NULL
             ORDER BY 1, 2",
        ),
        (
            DocKind::Relation,
            "SELECT id, subject_id FROM relation WHERE id IN (SELECT value FROM json_each(?1))
             UNION ALL
             SELECT id, object_id FROM relation WHERE id IN (SELECT value FROM json_each(?1))",
        ),
        (
            DocKind::Observation,
            "SELECT id, entity_id FROM observation WHERE id IN (SELECT value FROM json_each(?1))",
        ),
    ] {
        for (id, entity) in rows_by_id::<i64>(conn, sql, &ids_of(kind))? {
            ends.entry((kind, id)).or_default().push(entity);
        }
    }
    Ok(ends)
}

/// Which optional links the memory holds at all: documents about an entity, facts with a
/// source chunk. A memory without any (many have no `Document::about`; no fact cairn
/// writes today has a source) skips that statement for every entity: two of the three
/// statements per entity, most of the passage step's time then (measured).
#[derive(Debug, Clone, Copy, Default)]
struct Kept {
    about: bool,
    sources: bool,
}

impl Kept {
    /// One statement, answered from the first entry of each partial index.
    fn read(conn: &Connection) -> Result<Kept> {
        let mut stmt = conn.prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM document WHERE about_id IS NOT NULL),
                    EXISTS (SELECT 1 FROM relation WHERE chunk_id IS NOT NULL)
                    OR EXISTS (SELECT 1 FROM observation WHERE chunk_id IS NOT NULL)",
        )?;
        Ok(stmt.query_row([], |r| {
            Ok(Kept {
                about: r.get(0)?,
                sources: r.get(1)?,
            })
        })?)
    }
}

/// The chunks an entity leads to, distinct, in a stable order: its documents' chunks, the
/// chunks mentioning it (unless it is a hub), the chunks its facts came from (each source
/// only if `kept` says the memory has any).
fn passages_of(conn: &Connection, entity: i64, kept: Kept) -> Result<Vec<i64>> {
    let limit = PER_ENTITY as i64;
    let mut chunks: Vec<i64> = Vec::new();
    let push_all = |sql: &str, limit: i64, chunks: &mut Vec<i64>| -> Result<usize> {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(rusqlite::params![entity, limit], |r| r.get::<_, i64>(0))?;
        let mut n = 0;
        for row in rows {
            n += 1;
            let chunk = row?;
            if !chunks.contains(&chunk) {
                chunks.push(chunk);
            }
        }
        Ok(n)
    };
    if kept.about {
        push_all(
            "SELECT c.id FROM document d JOIN chunk c ON c.document_id = d.id
             WHERE d.about_id = ?1 ORDER BY c.id LIMIT ?2",
            limit,
            &mut chunks,
        )?;
    }
    let mut mentioning = Vec::new();
    let mentions = push_all(
        "SELECT chunk_id FROM mention WHERE entity_id = ?1 ORDER BY chunk_id LIMIT ?2",
        HUB as i64 + 1,
        &mut mentioning,
    )?;
    if mentions <= HUB {
        for chunk in mentioning.into_iter().take(PER_ENTITY) {
            if !chunks.contains(&chunk) {
                chunks.push(chunk);
            }
        }
    }
    if kept.sources {
        push_all(
            // Each source is read from its partial index of (entity, chunk) pairs
            // (`schema/0007_fact_sources.sql`) in chunk order and stopped at the limit, so a
            // hub with a million relations costs what one with a few does, and no row is read
            // for a fact without a source.
            "SELECT chunk_id FROM (
                 SELECT chunk_id FROM (SELECT DISTINCT chunk_id FROM relation
                     WHERE subject_id = ?1 AND chunk_id IS NOT NULL ORDER BY chunk_id LIMIT ?2)
                 UNION
                 SELECT chunk_id FROM (SELECT DISTINCT chunk_id FROM relation
                     WHERE object_id = ?1 AND chunk_id IS NOT NULL ORDER BY chunk_id LIMIT ?2)
                 UNION
                 SELECT chunk_id FROM (SELECT DISTINCT chunk_id FROM observation
                     WHERE entity_id = ?1 AND chunk_id IS NOT NULL ORDER BY chunk_id LIMIT ?2)
             ) ORDER BY chunk_id LIMIT ?2",
            limit,
            &mut chunks,
        )?;
    }
    Ok(chunks)
}
