//! Filters applied after fusion: who wrote a hit, when, and whether a triple held at a
//! given time or holds now; and the labels that mark a hit's validity and provenance. A
//! filter never changes the ranking of what it keeps.
//!
//! Everything is read for a window of hits at once, one statement per kind.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;
use crate::index::schema::DocKind;
use crate::retrieve::{Target, doc_kind_of, json_ids, order_key, target_of};
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

/// When a row was written and by which episode, plus a relation's validity interval,
/// with the dates (`YYYY-MM-DD`, UTC) the labels show.
#[derive(Debug, Clone)]
pub(crate) struct Provenance {
    written: Timestamp,
    written_on: String,
    agent: Option<String>,
    valid_from: Option<Timestamp>,
    valid_to: Option<Timestamp>,
    from_date: Option<String>,
    to_date: Option<String>,
}

impl Provenance {
    /// `(from 2026-01-05 until 2026-03-01)`, `(until …)` or `(from …)`; `None` without a
    /// known bound.
    pub(crate) fn validity_label(&self) -> Option<String> {
        match (&self.from_date, &self.to_date) {
            (Some(from), Some(to)) => Some(format!("(from {from} until {to})")),
            (None, Some(to)) => Some(format!("(until {to})")),
            (Some(from), None) => Some(format!("(from {from})")),
            (None, None) => None,
        }
    }

    /// `[agent, 2026-11-30]`, or `[2026-11-30]` for a row written outside an episode.
    pub(crate) fn provenance_label(&self) -> String {
        match &self.agent {
            Some(agent) => format!("[{agent}, {}]", self.written_on),
            None => format!("[{}]", self.written_on),
        }
    }

    /// Whether a relation's validity ended at or before `now`.
    fn ended(&self, now: Timestamp) -> bool {
        self.valid_to.is_some_and(|to| to <= now)
    }
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

/// The provenance of each of `targets` that still exists, one statement per kind.
pub(crate) fn provenance_of(conn: &Connection, targets: &[Target]) -> Result<Facts> {
    let mut out = Facts::new();
    // A relation counts as written when it was first stated; the others when created.
    let kinds = [
        (DocKind::Entity, "x.created_at", "NULL", "NULL", "entity"),
        (
            DocKind::Relation,
            "x.first_seen",
            "x.valid_from",
            "x.valid_to",
            "relation",
        ),
        (
            DocKind::Observation,
            "x.created_at",
            "NULL",
            "NULL",
            "observation",
        ),
        (DocKind::Chunk, "x.created_at", "NULL", "NULL", "chunk"),
    ];
    for (kind, written, from, to, table) in kinds {
        let ids: Vec<i64> = targets
            .iter()
            .filter(|&&t| doc_kind_of(t) == kind)
            .map(|&t| order_key(t).1)
            .collect();
        if ids.is_empty() {
            continue;
        }
        // The dates come from SQLite's calendar, so no date code lives here.
        let sql = format!(
            "SELECT x.id, {written}, ep.agent, {from}, {to}, date({written} / 1000, 'unixepoch'),
                    date({from} / 1000, 'unixepoch'), date({to} / 1000, 'unixepoch')
             FROM {table} x LEFT JOIN episode ep ON ep.id = x.episode_id
             WHERE x.id IN (SELECT value FROM json_each(?1))"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([json_ids(ids.into_iter())], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Provenance {
                    written: r.get(1)?,
                    agent: r.get(2)?,
                    valid_from: r.get(3)?,
                    valid_to: r.get(4)?,
                    written_on: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
                    from_date: r.get(6)?,
                    to_date: r.get(7)?,
                },
            ))
        })?;
        for row in rows {
            let (id, p) = row?;
            if let Some(target) = target_of(kind, id) {
                out.insert(target, p);
            }
        }
    }
    Ok(out)
}
