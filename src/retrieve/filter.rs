//! Filters applied after fusion: who wrote a hit, when, and whether a triple held at a
//! given time or holds now; and the labels that mark a hit's validity and provenance. A
//! filter never changes the ranking of what it keeps.
//!
//! Everything is read for a window of hits at once, one statement per kind.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;
use crate::retrieve::Target;
use crate::retrieve::provenance::{Provenance, provenance_of};
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
    /// Keep relations whose validity ended (`valid_to` passed), marked with their
    /// interval; without it (and without `valid_at`) they are left out.
    pub(crate) history: bool,
}

/// The provenance of one window of hits, keyed by target; a target that no longer
/// exists is absent.
pub(crate) type Facts = HashMap<Target, Provenance>;

impl Filter {
    /// Whether the filter looks only at relations' validity (the default), so only
    /// relations need reading.
    pub(crate) fn is_empty(&self) -> bool {
        self.agent.is_none()
            && self.since.is_none()
            && self.until.is_none()
            && self.valid_at.is_none()
    }

    /// What [`admits`](Self::admits) needs about `window`: every target's provenance,
    /// or only the relations' when that is all the filter looks at.
    pub(crate) fn read(&self, conn: &Connection, window: &[Target]) -> Result<Facts> {
        if self.is_empty() {
            let relations: Vec<Target> = window
                .iter()
                .copied()
                .filter(|t| matches!(t, Target::Relation(_)))
                .collect();
            provenance_of(conn, &relations)
        } else {
            provenance_of(conn, window)
        }
    }

    /// Whether `target` passes, given the [`read`](Self::read) facts of its window;
    /// `false` if it no longer exists.
    pub(crate) fn admits(&self, facts: &Facts, target: Target, now: Timestamp) -> bool {
        let Some(p) = facts.get(&target) else {
            // Unread: only relations are read when the filter is otherwise empty.
            return self.is_empty() && !matches!(target, Target::Relation(_));
        };
        let agent_ok = match &self.agent {
            Some(agent) => p.agent.as_deref() == Some(agent.as_str()),
            None => true,
        };
        let window_ok =
            self.since.is_none_or(|t| p.written >= t) && self.until.is_none_or(|t| p.written < t);
        let valid_ok = match self.valid_at {
            Some(t) => {
                p.valid_from.is_none_or(|from| from <= t) && p.valid_to.is_none_or(|to| t < to)
            }
            None => self.history || !p.ended(now),
        };
        agent_ok && window_ok && valid_ok
    }
}
