//! The lexical channel: BM25 matches, re-scored by what surrounds them.
//!
//! 1. BM25 over names (boosted), text, and a chunk's context (the text of its
//!    neighbours in its document, weighted lower): the words of a question often sit in
//!    the turn before or after the one that answers it.
//! 2. Document score: a chunk gains a share of the best match's score in proportion to
//!    how well its whole document matches, so chunks of the conversation or file the
//!    query is about rise together.
//! 3. Focus: when the query names known entities, hits about them (chunks that mention
//!    them, their observations, relations and themselves) are multiplied by `1 + focus`.
//!
//! The weights were chosen on LoCoMo (`docs/retrieval.md` has the measurements).

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;
use crate::graph::mention::MIN_KEY_CHARS;
use crate::id::EntityId;
use crate::index::schema::DocKind;
use crate::index::{Bm25Hit, FieldWeights, SearchIndex};
use crate::normalize::fold_text;
use crate::retrieve::SearchOptions;

/// How many best-matching documents lend their score to their chunks.
const DOCUMENTS: usize = 50;
/// Longest name, in words, looked for in a query.
const MAX_NAME_WORDS: usize = 6;

/// The re-scored matches, best first (ties keep BM25 order).
pub(crate) fn matches(
    conn: &Connection,
    index: &SearchIndex,
    query: &str,
    kinds: &[DocKind],
    candidates: usize,
    options: &SearchOptions,
) -> Result<Vec<Bm25Hit>> {
    let weights = FieldWeights {
        name: options.name_boost,
        context: options.context_weight,
    };
    let mut hits = index.bm25(query, kinds, candidates, weights)?;
    if hits.is_empty() {
        return Ok(hits);
    }
    if options.document_weight > 0.0 && hits.iter().any(|h| h.document.is_some()) {
        add_document_scores(index, query, options.document_weight, &mut hits)?;
    }
    if options.focus > 0.0 {
        let named = entities_named_in(conn, query)?;
        if !named.is_empty() {
            for hit in &mut hits {
                if is_about(conn, hit, &named)? {
                    hit.score *= 1.0 + options.focus;
                }
            }
        }
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(hits)
}

fn add_document_scores(
    index: &SearchIndex,
    query: &str,
    weight: f32,
    hits: &mut [Bm25Hit],
) -> Result<()> {
    let documents: HashMap<i64, f32> = index.documents(query, DOCUMENTS)?.into_iter().collect();
    let best_document = documents.values().copied().fold(0.0, f32::max);
    let best_hit = hits.iter().map(|h| h.score).fold(0.0, f32::max);
    if best_document <= 0.0 {
        return Ok(());
    }
    for hit in hits {
        if let Some(score) = hit.document.and_then(|d| documents.get(&d)) {
            hit.score += weight * best_hit * score / best_document;
        }
    }
    Ok(())
}

/// The entities whose alias keys occur in the query as whole words.
pub(crate) fn entities_named_in(conn: &Connection, query: &str) -> Result<HashSet<EntityId>> {
    let folded = fold_text(query);
    let words = word_spans(&folded);
    let mut stmt = conn.prepare_cached("SELECT entity_id FROM alias WHERE key = ?1")?;
    let mut named = HashSet::new();
    for (i, &(start, _)) in words.iter().enumerate() {
        for &(_, end) in words.iter().skip(i).take(MAX_NAME_WORDS) {
            let candidate = &folded[start..end];
            if candidate.chars().count() < MIN_KEY_CHARS {
                continue;
            }
            if let Some(id) = stmt
                .query_row([candidate], |r| r.get::<_, EntityId>(0))
                .optional()?
            {
                named.insert(id);
            }
        }
    }
    Ok(named)
}

/// Byte spans of the runs of letters and digits in `text`.
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// Whether a hit is about one of `entities`: a chunk that mentions one, an observation of
/// one, a relation with one at either end, or one of them.
fn is_about(conn: &Connection, hit: &Bm25Hit, entities: &HashSet<EntityId>) -> Result<bool> {
    match hit.kind {
        DocKind::Entity => Ok(entities.contains(&EntityId::from_raw(hit.id))),
        DocKind::Chunk => {
            let mut stmt = conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM mention WHERE chunk_id = ?1 AND entity_id = ?2)",
            )?;
            for entity in entities {
                if stmt.query_row(params![hit.id, entity], |r| r.get::<_, bool>(0))? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        DocKind::Observation => {
            let owner: Option<EntityId> = conn
                .prepare_cached("SELECT entity_id FROM observation WHERE id = ?1")?
                .query_row([hit.id], |r| r.get(0))
                .optional()?;
            Ok(owner.is_some_and(|e| entities.contains(&e)))
        }
        DocKind::Relation => {
            let ends: Option<(EntityId, EntityId)> = conn
                .prepare_cached("SELECT subject_id, object_id FROM relation WHERE id = ?1")?
                .query_row([hit.id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            Ok(ends.is_some_and(|(s, o)| entities.contains(&s) || entities.contains(&o)))
        }
        DocKind::Document => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_spans_skip_punctuation() {
        let text = "what did o'brien's acme-corp do?";
        let words: Vec<&str> = word_spans(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(
            words,
            ["what", "did", "o", "brien", "s", "acme", "corp", "do"]
        );
    }
}
