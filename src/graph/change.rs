//! The change log: one row per mutation, in the mutation's transaction, with a strictly
//! increasing `seq`. The search index follows it; it is also the audit trail.

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Error, Result};
use crate::graph::WriteCtx;
use crate::id::{EpisodeId, Seq};
use crate::time::Timestamp;

/// What a change did. `target` in [`Change`] is the id of the row named here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ChangeOp {
    /// An entity was created (target: entity id).
    EntityCreated,
    /// An entity's kind or summary changed (target: entity id).
    EntityUpdated,
    /// An entity got a new display name (target: entity id).
    EntityRenamed,
    /// Another entity was merged into this one (target: the surviving entity id).
    EntityMerged,
    /// An entity was deleted (target: entity id).
    EntityDeleted,
    /// An entity gained an alias (target: entity id; detail: the key).
    AliasAdded,
    /// A new triple was stored (target: relation id).
    RelationCreated,
    /// An existing triple was asserted again (target: relation id).
    RelationMentioned,
    /// A triple's endpoints, validity or counts changed (target: relation id).
    RelationUpdated,
    /// A triple was removed (target: relation id).
    RelationRemoved,
    /// An observation was stored (target: observation id).
    ObservationAdded,
    /// An observation moved to another entity by a merge (target: observation id).
    ObservationMoved,
    /// An observation was removed (target: observation id).
    ObservationRemoved,
    /// A chunk of a document was stored (target: chunk id).
    ChunkAdded,
    /// A chunk was removed with its document (target: chunk id; detail: the document id).
    ChunkRemoved,
}

const OPS: &[(ChangeOp, &str)] = &[
    (ChangeOp::EntityCreated, "entity.create"),
    (ChangeOp::EntityUpdated, "entity.update"),
    (ChangeOp::EntityRenamed, "entity.rename"),
    (ChangeOp::EntityMerged, "entity.merge"),
    (ChangeOp::EntityDeleted, "entity.delete"),
    (ChangeOp::AliasAdded, "alias.add"),
    (ChangeOp::RelationCreated, "relation.create"),
    (ChangeOp::RelationMentioned, "relation.mention"),
    (ChangeOp::RelationUpdated, "relation.update"),
    (ChangeOp::RelationRemoved, "relation.remove"),
    (ChangeOp::ObservationAdded, "observation.add"),
    (ChangeOp::ObservationMoved, "observation.move"),
    (ChangeOp::ObservationRemoved, "observation.remove"),
    (ChangeOp::ChunkAdded, "chunk.add"),
    (ChangeOp::ChunkRemoved, "chunk.remove"),
];

impl ChangeOp {
    /// The name stored in the `change.op` column, e.g. `relation.create`.
    pub fn as_str(self) -> &'static str {
        OPS.iter()
            .find(|(op, _)| *op == self)
            .map_or("unknown", |(_, name)| name)
    }

    fn parse(name: &str) -> Option<Self> {
        OPS.iter().find(|(_, n)| *n == name).map(|(op, _)| *op)
    }
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    /// Position in the log.
    pub seq: Seq,
    /// When the change was committed (writer's clock).
    pub at: Timestamp,
    /// What happened.
    pub op: ChangeOp,
    /// The id of the row it happened to (see [`ChangeOp`]).
    pub target: i64,
    /// Extra facts as JSON text (an alias key, a merged entity id...).
    pub detail: Option<String>,
    /// The episode the change was written under, if any.
    pub episode: Option<EpisodeId>,
}

pub(crate) fn log(
    conn: &Connection,
    ctx: &WriteCtx,
    op: ChangeOp,
    target: i64,
    detail: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO change(at, op, target, detail, episode_id) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![ctx.at, op.as_str(), target, detail, ctx.episode])?;
    Ok(())
}

/// Logs `op` once for every id that `select` (one `?1` parameter) returns.
pub(crate) fn log_each(
    conn: &Connection,
    ctx: &WriteCtx,
    op: ChangeOp,
    select: &str,
    param: i64,
) -> Result<()> {
    let ids: Vec<i64> = conn
        .prepare_cached(select)?
        .query_map([param], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in ids {
        log(conn, ctx, op, id, None)?;
    }
    Ok(())
}

const COLUMNS: &str = "c.seq, c.at, c.op, c.target, c.detail, c.episode_id";

type RawChange = (
    Seq,
    Timestamp,
    String,
    i64,
    Option<String>,
    Option<EpisodeId>,
);

fn from_row(row: &Row<'_>) -> rusqlite::Result<RawChange> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn collect(rows: impl Iterator<Item = rusqlite::Result<RawChange>>) -> Result<Vec<Change>> {
    rows.map(|row| {
        let (seq, at, op, target, detail, episode) = row?;
        let op = ChangeOp::parse(&op).ok_or_else(|| {
            Error::invalid_input("change log", format!("unknown op {op:?} at seq {seq}"))
        })?;
        Ok(Change {
            seq,
            at,
            op,
            target,
            detail,
            episode,
        })
    })
    .collect()
}

/// Changes with `seq > after`, oldest first, at most `limit`.
pub(crate) fn since(conn: &Connection, after: Seq, limit: usize) -> Result<Vec<Change>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM change c WHERE c.seq > ?1 ORDER BY c.seq LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![after, limit as i64], from_row)?;
    collect(rows)
}

/// Changes written under episodes of `agent`, oldest first.
pub(crate) fn by_agent(conn: &Connection, agent: &str, limit: usize) -> Result<Vec<Change>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM change c JOIN episode e ON e.id = c.episode_id
         WHERE e.agent = ?1 ORDER BY c.seq LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![agent, limit as i64], from_row)?;
    collect(rows)
}

/// Changes newest first, at most `limit`, keeping those written under an episode of
/// `agent` (when given), at or after `since`, before `until` and with `seq < before`.
pub(crate) fn filtered(
    conn: &Connection,
    agent: Option<&str>,
    (since, until): (Option<Timestamp>, Option<Timestamp>),
    before: Option<Seq>,
    limit: usize,
) -> Result<Vec<Change>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM change c LEFT JOIN episode e ON e.id = c.episode_id
         WHERE (?1 IS NULL OR e.agent = ?1) AND (?2 IS NULL OR c.at >= ?2)
           AND (?3 IS NULL OR c.at < ?3) AND (?4 IS NULL OR c.seq < ?4)
         ORDER BY c.seq DESC LIMIT ?5"
    ))?;
    let rows = stmt.query_map(params![agent, since, until, before, limit as i64], from_row)?;
    collect(rows)
}

/// The newest `seq`, or 0 for an empty log.
pub(crate) fn last_seq(conn: &Connection) -> Result<Seq> {
    let seq: Option<Seq> = conn
        .query_row("SELECT max(seq) FROM change", [], |r| r.get(0))
        .optional()?
        .flatten();
    Ok(seq.unwrap_or(Seq::from_raw(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_op_round_trips_through_its_name() {
        for (op, name) in OPS {
            assert_eq!(op.as_str(), *name);
            assert_eq!(ChangeOp::parse(name), Some(*op));
        }
        assert_eq!(ChangeOp::parse("bogus"), None);
    }
}
