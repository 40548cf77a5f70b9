//! Mention linking: which known entities a chunk names.
//!
//! A chunk mentions an entity when one of the entity's alias keys occurs in the chunk's
//! folded text ([`crate::normalize`]: same case folding, width and spacing rules as the
//! keys) at word boundaries. "Met ＡＣＭＥ  corp's CEO" mentions "Acme Corp"; "Acmes"
//! does not mention "Acme".
//!
//! Matching runs one Aho-Corasick automaton over every key ([`KeySet`]), so its cost
//! grows with the text, not with the number of names. The indexer owns the automaton and
//! fills the `mention` table as it follows the change log, so links are derived data,
//! exactly like the search index: a chunk stored now is linked to every entity known when
//! it is indexed, and an entity created later is linked to the chunks stored before it.

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, MatchKind};
use rusqlite::{Connection, params};

use crate::error::{Error, Result};
use crate::id::{ChunkId, EntityId};
use crate::normalize::{fold_text, is_cjk};

/// Keys shorter than this many characters are never matched: a one-letter alias ("X",
/// "I") would link to nearly every chunk.
pub(crate) const MIN_KEY_CHARS: usize = 2;

/// A set of alias keys compiled for matching.
pub(crate) struct KeySet {
    automaton: AhoCorasick,
    keys: Vec<String>,
}

impl KeySet {
    /// Compiles `keys`, skipping the ones too short to match.
    pub(crate) fn build(keys: impl IntoIterator<Item = String>) -> Result<KeySet> {
        let keys: Vec<String> = keys
            .into_iter()
            .filter(|k| k.chars().count() >= MIN_KEY_CHARS)
            .collect();
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&keys)
            .map_err(|e| Error::Index(format!("cannot compile the alias matcher: {e}")))?;
        Ok(KeySet { automaton, keys })
    }

    /// How many keys it matches.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Every key occurring in `folded` (a [`fold_text`] result) at word boundaries,
    /// added to `out`.
    pub(crate) fn occurring_in<'a>(&'a self, folded: &str, out: &mut HashSet<&'a str>) {
        for m in self.automaton.find_overlapping_iter(folded) {
            if at_word_boundaries(folded, m.start(), m.end()) {
                out.insert(&self.keys[m.pattern().as_usize()]);
            }
        }
    }
}

/// Whether `key` occurs in `folded` at word boundaries (the check [`KeySet`] makes, for
/// one key).
pub(crate) fn occurs(folded: &str, key: &str) -> bool {
    key.chars().count() >= MIN_KEY_CHARS
        && folded
            .match_indices(key)
            .any(|(start, m)| at_word_boundaries(folded, start, start + m.len()))
}

/// A match must not start or end inside a word: "acme" is not in "acmes". Scripts
/// written without spaces (Chinese, Japanese, Thai) have no such boundaries, so any
/// occurrence there counts.
fn at_word_boundaries(text: &str, start: usize, end: usize) -> bool {
    let matched = &text[start..end];
    !joins(text[..start].chars().next_back(), matched.chars().next())
        && !joins(matched.chars().next_back(), text[end..].chars().next())
}

fn joins(left: Option<char>, right: Option<char>) -> bool {
    match (left, right) {
        (Some(a), Some(b)) => is_spaced_word_char(a) && is_spaced_word_char(b),
        _ => false,
    }
}

fn is_spaced_word_char(c: char) -> bool {
    (c.is_alphanumeric() || c == '_') && !is_unspaced_script(c)
}

/// Thai and Lao, and the CJK scripts. Korean spaces its words but glues particles to
/// them ("서울에서", in Seoul), so a Hangul name counts wherever it occurs too.
fn is_unspaced_script(c: char) -> bool {
    matches!(c, '\u{0E00}'..='\u{0EFF}') || is_cjk(c)
}

/// Every alias key in the file.
pub(crate) fn all_keys(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT key FROM alias")?;
    let keys = stmt.query_map([], |r| r.get(0))?;
    Ok(keys.collect::<rusqlite::Result<_>>()?)
}

/// The alias keys of one entity (none if it no longer exists).
pub(crate) fn keys_of(conn: &Connection, entity: EntityId) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT key FROM alias WHERE entity_id = ?1")?;
    let keys = stmt.query_map([entity], |r| r.get(0))?;
    Ok(keys.collect::<rusqlite::Result<_>>()?)
}

/// The folded text of a chunk, if it still exists.
pub(crate) fn folded_chunk(conn: &Connection, chunk: ChunkId) -> Result<Option<String>> {
    use rusqlite::OptionalExtension;
    let text: Option<String> = conn
        .prepare_cached("SELECT text FROM chunk WHERE id = ?1")?
        .query_row([chunk], |r| r.get(0))
        .optional()?;
    Ok(text.as_deref().map(fold_text))
}

/// Records that `chunk` mentions whichever entity owns `key` *now* (the alias may have
/// moved by a merge, or gone, since the match was found). Nothing happens if the chunk
/// or the key is gone, or the link exists.
pub(crate) fn link(conn: &Connection, chunk: ChunkId, key: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO mention(chunk_id, entity_id)
         SELECT ?1, entity_id FROM alias WHERE key = ?2 AND EXISTS (SELECT 1 FROM chunk WHERE id = ?1)",
    )?
    .execute(params![chunk, key])?;
    Ok(())
}

/// The entities a chunk mentions.
pub(crate) fn mentioned_in(conn: &Connection, chunk: ChunkId) -> Result<Vec<EntityId>> {
    let mut stmt = conn
        .prepare_cached("SELECT entity_id FROM mention WHERE chunk_id = ?1 ORDER BY entity_id")?;
    let ids = stmt.query_map([chunk], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// The chunks that mention an entity, newest first, at most `limit`.
pub(crate) fn mentioning(
    conn: &Connection,
    entity: EntityId,
    limit: usize,
) -> Result<Vec<ChunkId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT chunk_id FROM mention WHERE entity_id = ?1 ORDER BY chunk_id DESC LIMIT ?2",
    )?;
    let ids = stmt.query_map(params![entity, limit as i64], |r| r.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// Moves the links of `absorb` to `keep` (a merge), keeping one link per pair.
pub(crate) fn move_all(conn: &Connection, absorb: EntityId, keep: EntityId) -> Result<()> {
    conn.prepare_cached("UPDATE OR IGNORE mention SET entity_id = ?2 WHERE entity_id = ?1")?
        .execute([absorb, keep])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(keys: &[&str], text: &str) -> Vec<String> {
        let set = KeySet::build(keys.iter().map(|k| k.to_string())).unwrap();
        let folded = fold_text(text);
        let mut out = HashSet::new();
        set.occurring_in(&folded, &mut out);
        let mut out: Vec<String> = out.into_iter().map(str::to_owned).collect();
        out.sort();
        out
    }

    #[test]
    fn matches_folded_text_at_word_boundaries() {
        assert_eq!(
            found(
                &["acme corp", "acme", "widget inc"],
                "Met ＡＣＭＥ  Corp's CEO."
            ),
            ["acme", "acme corp"]
        );
        assert!(found(&["acme"], "Acmes and acmeville").is_empty());
        assert_eq!(found(&["zürich"], "moved to ZÜRICH, then"), ["zürich"]);
    }

    #[test]
    fn unspaced_scripts_match_inside_running_text() {
        assert_eq!(found(&["東京"], "私は東京に住んでいます"), ["東京"]);
        assert_eq!(found(&["东京"], "我下个月去东京出差"), ["东京"]);
        assert_eq!(found(&["서울"], "서울에서 김치를 먹었다"), ["서울"]);
    }

    #[test]
    fn one_letter_keys_are_ignored() {
        assert!(found(&["x", "a"], "a x b").is_empty());
        assert!(!occurs("a x b", "x"));
    }

    #[test]
    fn occurs_agrees_with_the_automaton() {
        let folded = fold_text("The Acme deal; acmeville");
        assert!(occurs(&folded, "acme"));
        assert!(occurs(&folded, "acme deal"));
        assert!(!occurs(&folded, "acmev"));
    }
}
