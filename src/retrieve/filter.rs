//! Filters applied after fusion: who wrote a hit, when, and whether a triple held at a
//! given time. A filter never changes the ranking of what it keeps.

use rusqlite::{Connection, OptionalExtension};

use crate::error::Result;
use crate::retrieve::Target;
use crate::time::Timestamp;

/// What a hit must satisfy to be returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Filter {
    /// Written under an episode of this agent.
    pub(crate) agent: Option<String>,
    /// Written at or after this time.
    pub(crate) since: Option<Timestamp>,
    /// Written before this time.
    pub(crate) until: Option<Timestamp>,
    /// Relations must be valid at this time; other kinds pass.
    pub(crate) valid_at: Option<Timestamp>,
}

/// When a row was written and by which episode, plus a relation's validity interval.
struct Provenance {
    written: Timestamp,
    agent: Option<String>,
    valid_from: Option<Timestamp>,
    valid_to: Option<Timestamp>,
}

impl Filter {
    pub(crate) fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether `target` passes; `false` if it no longer exists.
    pub(crate) fn admits(&self, conn: &Connection, target: Target) -> Result<bool> {
        if self.is_empty() {
            return Ok(true);
        }
        let Some(p) = provenance(conn, target)? else {
            return Ok(false);
        };
        let agent_ok = match &self.agent {
            Some(agent) => p.agent.as_deref() == Some(agent.as_str()),
            None => true,
        };
        let window_ok =
            self.since.is_none_or(|t| p.written >= t) && self.until.is_none_or(|t| p.written < t);
        let valid_ok = self.valid_at.is_none_or(|t| {
            p.valid_from.is_none_or(|from| from <= t) && p.valid_to.is_none_or(|to| t < to)
        });
        Ok(agent_ok && window_ok && valid_ok)
    }
}

fn provenance(conn: &Connection, target: Target) -> Result<Option<Provenance>> {
    // A relation counts as written when it was first stated; the others when created.
    let (sql, id) = match target {
        Target::Entity(id) => (
            "SELECT x.created_at, ep.agent, NULL, NULL FROM entity x
             LEFT JOIN episode ep ON ep.id = x.episode_id WHERE x.id = ?1",
            id.get(),
        ),
        Target::Relation(id) => (
            "SELECT x.first_seen, ep.agent, x.valid_from, x.valid_to FROM relation x
             LEFT JOIN episode ep ON ep.id = x.episode_id WHERE x.id = ?1",
            id.get(),
        ),
        Target::Observation(id) => (
            "SELECT x.created_at, ep.agent, NULL, NULL FROM observation x
             LEFT JOIN episode ep ON ep.id = x.episode_id WHERE x.id = ?1",
            id.get(),
        ),
        Target::Chunk(id) => (
            "SELECT x.created_at, ep.agent, NULL, NULL FROM chunk x
             LEFT JOIN episode ep ON ep.id = x.episode_id WHERE x.id = ?1",
            id.get(),
        ),
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id], |r| {
            Ok(Provenance {
                written: r.get(0)?,
                agent: r.get(1)?,
                valid_from: r.get(2)?,
                valid_to: r.get(3)?,
            })
        })
        .optional()?)
}
