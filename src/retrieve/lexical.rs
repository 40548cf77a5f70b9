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

use rusqlite::{Connection, params};

use crate::error::Result;
use crate::graph::entity;
use crate::graph::mention::MIN_KEY_CHARS;
use crate::id::EntityId;
use crate::index::schema::DocKind;
use crate::index::{Bm25Hit, FieldWeights, SearchIndex};
use crate::normalize::{fold_text, is_cjk, normalize_name};
use crate::retrieve::{SearchOptions, json_ids};

/// How many best-matching documents lend their score to their chunks.
const DOCUMENTS: usize = 50;
/// Longest name, in words, looked for in a query.
const MAX_NAME_WORDS: usize = 6;
/// Longest name, in CJK characters, looked for in a query.
const MAX_NAME_CJK_CHARS: usize = 12;

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
    if kinds.is_empty() || kinds.contains(&DocKind::Entity) {
        lift_exact_name(conn, query, &mut hits)?;
    }
    if hits.is_empty() {
        return Ok(hits);
    }
    if options.document_weight > 0.0 && hits.iter().any(|h| h.document.is_some()) {
        add_document_scores(index, query, options.document_weight, &mut hits)?;
    }
    if options.focus > 0.0 {
        let named = entities_named_in(conn, query)?;
        if !named.is_empty() {
            let about = about(conn, &hits, &named)?;
            for hit in &mut hits {
                if about.contains(&(hit.kind, hit.id)) {
                    hit.score *= 1.0 + options.focus;
                }
            }
        }
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    Ok(hits)
}

/// How far above the best match the entity a query names exactly is put.
const EXACT_NAME_LIFT: f32 = 2.0;

/// When the whole query is an entity's name or alias ("Alice", "ＡＬＩＣＥ"), that entity
/// is what the caller asked for: it is put first, well above relations and observations
/// that repeat the name (found or not by BM25; one key lookup). Applied before the
/// document and focus re-scoring, which only add to others' scores up to a share of the
/// best, so the margin holds.
fn lift_exact_name(conn: &Connection, query: &str, hits: &mut Vec<Bm25Hit>) -> Result<()> {
    let Ok(key) = normalize_name(query) else {
        // Blank or longer than any name: it names nothing.
        return Ok(());
    };
    let Some(entity) = entity::lookup(conn, &key)? else {
        return Ok(());
    };
    let best = hits.iter().map(|h| h.score).fold(0.0, f32::max);
    let score = if best > 0.0 {
        best * EXACT_NAME_LIFT
    } else {
        1.0
    };
    let id = entity.get();
    match hits
        .iter_mut()
        .find(|h| h.kind == DocKind::Entity && h.id == id)
    {
        Some(hit) => hit.score = score,
        None => hits.push(Bm25Hit {
            kind: DocKind::Entity,
            id,
            document: None,
            score,
        }),
    }
    Ok(())
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

/// The entities whose alias keys occur in the query as whole words: every run of up to
/// `MAX_NAME_WORDS` words (CJK characters count as words, up to `MAX_NAME_CJK_CHARS` of
/// them) is looked up, all in one statement.
pub(crate) fn entities_named_in(conn: &Connection, query: &str) -> Result<HashSet<EntityId>> {
    let folded = fold_text(query);
    let words = word_spans(&folded);
    let mut candidates: Vec<&str> = Vec::new();
    for (i, &(start, _)) in words.iter().enumerate() {
        let (mut spaced, mut cjk) = (0, 0);
        for &(word_start, end) in &words[i..] {
            if is_cjk_char(&folded[word_start..end]) {
                cjk += 1;
            } else {
                spaced += 1;
            }
            if spaced > MAX_NAME_WORDS || cjk > MAX_NAME_CJK_CHARS {
                break;
            }
            let candidate = &folded[start..end];
            if candidate.chars().count() >= MIN_KEY_CHARS {
                candidates.push(candidate);
            }
        }
    }
    if candidates.is_empty() {
        return Ok(HashSet::new());
    }
    let keys = serde_json::to_string(&candidates)
        .map_err(|e| crate::Error::invalid_input("query", e.to_string()))?;
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT entity_id FROM alias WHERE key IN (SELECT value FROM json_each(?1))",
    )?;
    let named = stmt
        .query_map([keys], |r| r.get::<_, EntityId>(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(named)
}

fn is_cjk_char(word: &str) -> bool {
    word.chars().next().is_some_and(is_cjk)
}

/// Byte spans of the runs of letters and digits in `text`, each CJK character a word of
/// its own (those scripts do not space their words).
fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        if is_cjk(c) {
            if let Some(s) = start.take() {
                spans.push((s, i));
            }
            spans.push((i, i + c.len_utf8()));
            continue;
        }
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

/// The hits about one of `entities`: chunks that mention one, observations of one,
/// relations with one at either end, and the entities themselves. One query per kind
/// (ids passed as JSON arrays), not one per hit.
fn about(
    conn: &Connection,
    hits: &[Bm25Hit],
    entities: &HashSet<EntityId>,
) -> Result<HashSet<(DocKind, i64)>> {
    let named = json_ids(entities.iter().map(|e| e.get()));
    let mut out: HashSet<(DocKind, i64)> = hits
        .iter()
        .filter(|h| h.kind == DocKind::Entity && entities.contains(&EntityId::from_raw(h.id)))
        .map(|h| (h.kind, h.id))
        .collect();
    for (kind, sql) in [
        (
            DocKind::Chunk,
            "SELECT DISTINCT chunk_id FROM mention
             WHERE chunk_id IN (SELECT value FROM json_each(?1))
               AND entity_id IN (SELECT value FROM json_each(?2))",
        ),
        (
            DocKind::Observation,
            "SELECT id FROM observation
             WHERE id IN (SELECT value FROM json_each(?1))
               AND entity_id IN (SELECT value FROM json_each(?2))",
        ),
        (
            DocKind::Relation,
            "SELECT id FROM relation
             WHERE id IN (SELECT value FROM json_each(?1))
               AND (subject_id IN (SELECT value FROM json_each(?2))
                    OR object_id IN (SELECT value FROM json_each(?2)))",
        ),
    ] {
        let ids = json_ids(hits.iter().filter(|h| h.kind == kind).map(|h| h.id));
        if ids == "[]" {
            continue;
        }
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params![ids, named], |r| r.get::<_, i64>(0))?;
        for id in rows {
            out.insert((kind, id?));
        }
    }
    Ok(out)
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

    #[test]
    fn word_spans_cut_cjk_into_characters() {
        let text = "alice去了東京 tower";
        let words: Vec<&str> = word_spans(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(words, ["alice", "去", "了", "東", "京", "tower"]);
    }
}
