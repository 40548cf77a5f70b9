//! The indexer's half of mention linking ([`crate::graph::mention`]): an automaton over
//! every alias key, kept current as the indexer applies the change log, and the search
//! for the chunks a batch of changes links.
//!
//! For one batch of changes:
//! - every chunk the batch added is matched against all keys known now;
//! - every key the batch added (a new entity, a new alias) is looked up in the chunks
//!   indexed before the batch: the index proposes the chunks holding all of the key's
//!   words, and the folded text decides.
//!
//! Keys are compiled in two tiers so that a trickle of new names does not recompile the
//! automaton of every name: `recent` is rebuilt on each new key, and folded into `base`
//! once it grows past an eighth of it.
//!
//! The automaton is built lazily, by the first batch that adds a chunk: new keys alone
//! are looked up through the index, not the automaton, so a process that only writes
//! triples or searches (a `cairn add`, an MCP server answering `create_entities`) never
//! compiles every alias of a large memory (about 5 s at 100,000 entities).

use std::collections::{BTreeSet, HashSet};

use rusqlite::Connection;

use crate::error::Result;
use crate::graph::change::{Change, ChangeOp};
use crate::graph::mention::{self, KeySet};
use crate::id::{ChunkId, EntityId};

/// Recent keys are folded into the base automaton beyond this many, or an eighth of the
/// base, whichever is larger.
const RECENT_MIN: usize = 1024;

/// A link to record: `chunk` mentions the entity owning `key`.
pub(crate) type Link = (ChunkId, String);

#[derive(Default)]
pub(crate) struct Linker {
    base: Option<KeySet>,
    recent_keys: Vec<String>,
    recent: Option<KeySet>,
}

impl Linker {
    /// The links one batch of changes creates, for its changes after `derived` only (the
    /// links of the others are in the file already; the automaton learns their keys all
    /// the same). `indexed_chunks_with_words(key)` returns the chunks, among those
    /// searchable before the batch, that contain every word of `key`.
    pub(crate) fn links_for(
        &mut self,
        conn: &Connection,
        changes: &[Change],
        derived: i64,
        mut indexed_chunks_with_words: impl FnMut(&str) -> Result<Vec<ChunkId>>,
    ) -> Result<Vec<Link>> {
        let new_keys = self.learn_keys(conn, changes, derived)?;
        let added: BTreeSet<ChunkId> = changes
            .iter()
            .filter(|c| c.op == ChangeOp::ChunkAdded && c.seq.get() > derived)
            .map(|c| ChunkId::from_raw(c.target))
            .collect();
        if !added.is_empty() && self.base.is_none() {
            // Every key in the file, this batch's included (the snapshot holds them).
            self.rebuild(conn)?;
        }
        let mut links = Vec::new();
        for &chunk in &added {
            let Some(folded) = mention::folded_chunk(conn, chunk)? else {
                continue;
            };
            let mut found = HashSet::new();
            for set in self.sets() {
                set.occurring_in(&folded, &mut found);
            }
            links.extend(found.into_iter().map(|key| (chunk, key.to_owned())));
        }
        for key in &new_keys {
            for chunk in indexed_chunks_with_words(key)? {
                if added.contains(&chunk) {
                    continue;
                }
                if let Some(folded) = mention::folded_chunk(conn, chunk)?
                    && mention::occurs(&folded, key)
                {
                    links.push((chunk, key.clone()));
                }
            }
        }
        Ok(links)
    }

    fn sets(&self) -> impl Iterator<Item = &KeySet> {
        self.base.iter().chain(self.recent.iter())
    }

    /// Brings the automaton (once built) up to date with the keys `changes` added, and
    /// returns those added by the changes after `derived`.
    fn learn_keys(
        &mut self,
        conn: &Connection,
        changes: &[Change],
        derived: i64,
    ) -> Result<Vec<String>> {
        let mut new_keys = BTreeSet::new();
        let mut to_link = BTreeSet::new();
        for change in changes {
            if matches!(change.op, ChangeOp::EntityCreated | ChangeOp::AliasAdded) {
                let keys = mention::keys_of(conn, EntityId::from_raw(change.target))?;
                if change.seq.get() > derived {
                    to_link.extend(keys.iter().cloned());
                }
                new_keys.extend(keys);
            }
        }
        let long_enough = |k: &String| k.chars().count() >= mention::MIN_KEY_CHARS;
        let to_link: Vec<String> = to_link.into_iter().filter(long_enough).collect();
        let new_keys: Vec<String> = new_keys.into_iter().filter(long_enough).collect();
        match &self.base {
            // Not built yet: the batch that first needs it compiles every key, these too.
            None => {}
            Some(base) if !new_keys.is_empty() => {
                self.recent_keys.extend(new_keys.iter().cloned());
                if self.recent_keys.len() > RECENT_MIN.max(base.len() / 8) {
                    self.rebuild(conn)?;
                } else {
                    self.recent = Some(KeySet::build(self.recent_keys.iter().cloned())?);
                }
            }
            Some(_) => {}
        }
        Ok(to_link)
    }

    fn rebuild(&mut self, conn: &Connection) -> Result<()> {
        self.base = Some(KeySet::build(mention::all_keys(conn)?)?);
        self.recent_keys.clear();
        self.recent = None;
        Ok(())
    }
}
