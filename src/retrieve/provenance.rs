//! Who wrote a row and when: the episode (agent, source) and time behind a search hit,
//! plus a relation's validity interval. Read for a window of hits at once, one statement
//! per kind; the filters, the context labels and [`crate::Memory::provenance`] share it.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;
use crate::id::EpisodeId;
use crate::index::schema::DocKind;
use crate::retrieve::{Target, doc_kind_of, json_ids, order_key, target_of};
use crate::time::Timestamp;

/// Where a hit came from: when it was written and under which episode, and for a
/// relation the interval it holds in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Provenance {
    /// When the row was written; for a relation, when it was first stated.
    pub written: Timestamp,
    /// The episode it was written under, if any.
    pub episode: Option<EpisodeId>,
    /// The agent of that episode.
    pub agent: Option<String>,
    /// What that episode was extracted from (a mail id, a file...).
    pub source: Option<String>,
    /// A relation's start of validity, if stated.
    pub valid_from: Option<Timestamp>,
    /// A relation's end of validity, if stated (it was invalidated then).
    pub valid_to: Option<Timestamp>,
    // The dates (`YYYY-MM-DD`, UTC) the labels show, from SQLite's calendar so no date
    // code lives here.
    #[serde(skip)]
    written_on: String,
    #[serde(skip)]
    from_date: Option<String>,
    #[serde(skip)]
    to_date: Option<String>,
}

impl Provenance {
    /// The UTC date (`YYYY-MM-DD`) it was written on.
    pub fn written_on(&self) -> &str {
        &self.written_on
    }

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
    pub(crate) fn ended(&self, now: Timestamp) -> bool {
        self.valid_to.is_some_and(|to| to <= now)
    }
}

/// The provenance of each of `targets` that still exists, one statement per kind; a
/// target that no longer exists is absent.
pub(crate) fn provenance_of(
    conn: &Connection,
    targets: &[Target],
) -> Result<HashMap<Target, Provenance>> {
    let mut out = HashMap::new();
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
        let sql = format!(
            "SELECT x.id, {written}, x.episode_id, ep.agent, ep.source, {from}, {to},
                    date({written} / 1000, 'unixepoch'), date({from} / 1000, 'unixepoch'),
                    date({to} / 1000, 'unixepoch')
             FROM {table} x LEFT JOIN episode ep ON ep.id = x.episode_id
             WHERE x.id IN (SELECT value FROM json_each(?1))"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([json_ids(ids.into_iter())], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Provenance {
                    written: r.get(1)?,
                    episode: r.get::<_, Option<EpisodeId>>(2)?,
                    agent: r.get(3)?,
                    source: r.get(4)?,
                    valid_from: r.get(5)?,
                    valid_to: r.get(6)?,
                    written_on: r.get::<_, Option<String>>(7)?.unwrap_or_default(),
                    from_date: r.get(8)?,
                    to_date: r.get(9)?,
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
