//! The audit trail read back: what was written, when, and by which agent from which
//! source — the change log joined with its episodes, filtered and bounded.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::graph::change::{self, Change, ChangeOp};
use crate::graph::episode::{self, EpisodeInfo};
use crate::id::Seq;
use crate::memory::Memory;
use crate::time::Timestamp;

/// Which change-log rows [`Memory::history`] returns: newest first, at most `limit`
/// (default 100, at most [`HistoryQuery::MAX_LIMIT`]).
///
/// ```
/// use cairn::{Episode, HistoryQuery};
/// # let memory = cairn::Memory::ephemeral()?;
/// memory.episode(&Episode::new("mail").source("msg-1"))?.add_triple(("Ann", "knows", "Bob"))?;
/// memory.add_triple(("Carol", "knows", "Dan"))?; // outside an episode
/// let mail = memory.history(&HistoryQuery::new().agent("mail"))?;
/// assert_eq!(mail.len(), 3); // two entities and the relation, newest first
/// assert_eq!(mail[0].change.op, cairn::ChangeOp::RelationCreated);
/// assert_eq!(mail[0].episode.as_ref().unwrap().source.as_deref(), Some("msg-1"));
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    agent: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    before: Option<Seq>,
    limit: usize,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery {
            agent: None,
            since: None,
            until: None,
            before: None,
            limit: 100,
        }
    }
}

impl HistoryQuery {
    /// The largest `limit` accepted: one call reads at most this many changes.
    pub const MAX_LIMIT: usize = 10_000;

    /// The newest 100 changes, by anyone.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only changes written under an episode of `agent`.
    pub fn agent(mut self, agent: &str) -> Self {
        self.agent = Some(agent.to_owned());
        self
    }

    /// Only changes committed at or after `since` (the writer's clock).
    pub fn since(mut self, since: Timestamp) -> Self {
        self.since = Some(since);
        self
    }

    /// Only changes committed before `until`.
    pub fn until(mut self, until: Timestamp) -> Self {
        self.until = Some(until);
        self
    }

    /// Only changes older than `seq`: the next page after a page whose last (oldest)
    /// entry had this `seq`.
    pub fn before(mut self, seq: Seq) -> Self {
        self.before = Some(seq);
        self
    }

    /// At most this many changes.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    fn validate(&self) -> Result<()> {
        if self.limit > Self::MAX_LIMIT {
            return Err(Error::invalid_input(
                "history limit",
                format!("{}; the limit is {}", self.limit, Self::MAX_LIMIT),
            ));
        }
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since > until
        {
            return Err(Error::invalid_input("time range", "since is after until"));
        }
        Ok(())
    }
}

/// One change with the episode it was written under (`None` outside an episode).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryEntry {
    /// The change-log row.
    pub change: Change,
    /// Who wrote it, from what: the change's episode.
    pub episode: Option<EpisodeInfo>,
    /// What the change's target is now, for people: an entity's name, a relation's
    /// `subject –predicate→ object`, an observation's `entity: text`, the start of a
    /// chunk (texts cut at 200 characters); `None` once it no longer exists.
    pub what: Option<String>,
}

/// The longest text [`HistoryEntry::what`] shows, in characters.
const WHAT_CHARS: i64 = 200;

/// What `target` of `op` is now (see [`HistoryEntry::what`]).
fn describe(c: &Connection, op: ChangeOp, target: i64) -> Result<Option<String>> {
    let sql = match op {
        ChangeOp::EntityCreated
        | ChangeOp::EntityUpdated
        | ChangeOp::EntityRenamed
        | ChangeOp::EntityMerged
        | ChangeOp::EntityDeleted
        | ChangeOp::AliasAdded => "SELECT name FROM entity WHERE id = ?1",
        ChangeOp::RelationCreated
        | ChangeOp::RelationMentioned
        | ChangeOp::RelationUpdated
        | ChangeOp::RelationRemoved => {
            "SELECT s.name || ' –' || r.predicate || '→ ' || o.name FROM relation r
             JOIN entity s ON s.id = r.subject_id JOIN entity o ON o.id = r.object_id
             WHERE r.id = ?1"
        }
        ChangeOp::ObservationAdded | ChangeOp::ObservationMoved | ChangeOp::ObservationRemoved => {
            "SELECT e.name || ': ' || substr(o.text, 1, ?2) FROM observation o
             JOIN entity e ON e.id = o.entity_id WHERE o.id = ?1"
        }
        ChangeOp::ChunkAdded | ChangeOp::ChunkRemoved => {
            "SELECT substr(text, 1, ?2) FROM chunk WHERE id = ?1"
        }
    };
    let mut stmt = c.prepare_cached(sql)?;
    // Statements without `?2` take one parameter.
    let found = if stmt.parameter_count() == 2 {
        stmt.query_row(rusqlite::params![target, WHAT_CHARS], |r| r.get(0))
    } else {
        stmt.query_row([target], |r| r.get(0))
    };
    Ok(found.optional()?)
}

impl Memory {
    /// The change log newest first, filtered by `query`, each change with its episode;
    /// read from one snapshot. The audit trail behind `cairn log`.
    pub fn history(&self, query: &HistoryQuery) -> Result<Vec<HistoryEntry>> {
        query.validate()?;
        self.db().snapshot(|c| {
            let changes = change::filtered(
                c,
                query.agent.as_deref(),
                (query.since, query.until),
                query.before,
                query.limit,
            )?;
            let mut episodes = HashMap::new();
            changes
                .into_iter()
                .map(|change| {
                    let episode = match change.episode {
                        None => None,
                        Some(id) => match episodes.get(&id) {
                            Some(known) => Clone::clone(known),
                            None => {
                                let info = episode::get(c, id)?;
                                episodes.insert(id, info.clone());
                                info
                            }
                        },
                    };
                    let what = describe(c, change.op, change.target)?;
                    Ok(HistoryEntry {
                        change,
                        episode,
                        what,
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::change::ChangeOp;
    use crate::graph::episode::Episode;

    /// A time strictly after every change written so far.
    fn after_now() -> Timestamp {
        let t = Timestamp::now();
        while Timestamp::now() <= t {
            std::thread::yield_now();
        }
        Timestamp::now()
    }

    #[test]
    fn filters_by_agent_time_and_page() {
        let memory = Memory::ephemeral().unwrap();
        let mail = memory.episode(&Episode::new("mail").source("m-1")).unwrap();
        mail.add_triple(("Ann", "knows", "Bob")).unwrap();
        let middle = after_now();
        let chat = memory.episode(&Episode::new("chat")).unwrap();
        chat.observe("Ann", "Likes tea").unwrap();
        memory.observe("Bob", "Outside any episode").unwrap();

        let all = memory.history(&HistoryQuery::new()).unwrap();
        assert_eq!(all.len(), 5, "{all:#?}");
        assert!(
            all.windows(2).all(|w| w[0].change.seq > w[1].change.seq),
            "newest first"
        );
        assert!(all[0].episode.is_none());
        assert_eq!(all[0].what.as_deref(), Some("Bob: Outside any episode"));
        assert_eq!(all[2].what.as_deref(), Some("Ann –knows→ Bob"));
        assert_eq!(all[4].what.as_deref(), Some("Ann"));

        let by_mail = memory.history(&HistoryQuery::new().agent("mail")).unwrap();
        assert_eq!(by_mail.len(), 3);
        assert!(
            by_mail
                .iter()
                .all(|e| e.episode.as_ref().unwrap().agent.as_deref() == Some("mail"))
        );
        let by_chat = memory.history(&HistoryQuery::new().agent("chat")).unwrap();
        assert_eq!(by_chat.len(), 1);
        assert_eq!(by_chat[0].change.op, ChangeOp::ObservationAdded);
        assert!(
            memory
                .history(&HistoryQuery::new().agent("nobody"))
                .unwrap()
                .is_empty()
        );

        let since = memory.history(&HistoryQuery::new().since(middle)).unwrap();
        assert_eq!(since.len(), 2, "the observations");
        let until = memory.history(&HistoryQuery::new().until(middle)).unwrap();
        assert_eq!(until.len(), 3, "the triple");
        assert_eq!(since.len() + until.len(), all.len());

        let first_page = memory.history(&HistoryQuery::new().limit(4)).unwrap();
        let rest = memory
            .history(&HistoryQuery::new().before(first_page[3].change.seq))
            .unwrap();
        assert_eq!(first_page.len() + rest.len(), all.len());
        assert_eq!(rest[0].change.seq.get() + 1, first_page[3].change.seq.get());
    }

    #[test]
    fn bounds_are_checked() {
        let memory = Memory::ephemeral().unwrap();
        let over = HistoryQuery::new().limit(HistoryQuery::MAX_LIMIT + 1);
        assert!(memory.history(&over).unwrap_err().is_invalid_input());
        let backwards = HistoryQuery::new()
            .since(Timestamp::from_millis(10))
            .until(Timestamp::from_millis(5));
        assert!(memory.history(&backwards).unwrap_err().is_invalid_input());
        assert!(
            memory
                .history(&HistoryQuery::new().limit(0))
                .unwrap()
                .is_empty()
        );
    }
}
