//! Observations: free-text facts about one entity, never stored twice verbatim.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::graph::WriteCtx;
use crate::graph::change::{self, ChangeOp};
use crate::id::{EntityId, EpisodeId, ObservationId};
use crate::time::Timestamp;

/// A free-text fact about one entity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Observation {
    /// Its id.
    pub id: ObservationId,
    /// The entity it is about.
    pub entity: EntityId,
    /// The text (trimmed).
    pub text: String,
    /// When it was stored.
    pub created_at: Timestamp,
    /// The episode that stored it.
    pub episode: Option<EpisodeId>,
}

/// Stores `text` (already checked) on `entity` unless that exact text is already there;
/// returns the observation's id either way.
pub(crate) fn add(
    conn: &Connection,
    entity: EntityId,
    text: &str,
    ctx: &WriteCtx,
) -> Result<ObservationId> {
    if let Some(id) = add_if_new(conn, entity, text, ctx)? {
        return Ok(id);
    }
    // The UNIQUE conflict means the row exists in this transaction's view.
    find(conn, entity, text)?.ok_or_else(|| Error::not_found("observation", text))
}

/// Stores `text` (already checked) on `entity`; `None` if that exact text was already
/// there (nothing written).
pub(crate) fn add_if_new(
    conn: &Connection,
    entity: EntityId,
    text: &str,
    ctx: &WriteCtx,
) -> Result<Option<ObservationId>> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO observation(entity_id, text, created_at, episode_id) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (entity_id, text) DO NOTHING",
        )?
        .execute(params![entity, text, ctx.at, ctx.episode])?;
    if inserted == 0 {
        return Ok(None);
    }
    let id = ObservationId::from_raw(conn.last_insert_rowid());
    change::log(conn, ctx, ChangeOp::ObservationAdded, id.get(), None)?;
    Ok(Some(id))
}

/// The observation of `entity` with exactly this (trimmed) text, if any.
pub(crate) fn find(
    conn: &Connection,
    entity: EntityId,
    text: &str,
) -> Result<Option<ObservationId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM observation WHERE entity_id = ?1 AND text = ?2")?
        .query_row(params![entity, text], |r| r.get(0))
        .optional()?)
}

/// Removes one observation; false if it did not exist.
pub(crate) fn remove(conn: &Connection, id: ObservationId, ctx: &WriteCtx) -> Result<bool> {
    let removed = conn
        .prepare_cached("DELETE FROM observation WHERE id = ?1")?
        .execute([id])?;
    if removed > 0 {
        change::log(conn, ctx, ChangeOp::ObservationRemoved, id.get(), None)?;
    }
    Ok(removed > 0)
}

pub(crate) fn of_entity(conn: &Connection, entity: EntityId) -> Result<Vec<Observation>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, entity_id, text, created_at, episode_id FROM observation WHERE entity_id = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([entity], |r| {
        Ok(Observation {
            id: r.get(0)?,
            entity: r.get(1)?,
            text: r.get(2)?,
            created_at: r.get(3)?,
            episode: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Merge support: moves observations of `from` to `to`; texts `to` already has are
/// removed instead of duplicated.
pub(crate) fn move_all(
    conn: &Connection,
    from: EntityId,
    to: EntityId,
    ctx: &WriteCtx,
) -> Result<()> {
    let moved: Vec<i64> = conn
        .prepare_cached(
            "UPDATE OR IGNORE observation SET entity_id = ?2 WHERE entity_id = ?1 RETURNING id",
        )?
        .query_map([from, to], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in moved {
        change::log(conn, ctx, ChangeOp::ObservationMoved, id, None)?;
    }
    // What is left on `from` duplicated a text of `to`.
    log_removal_of_all(conn, from, ctx)?;
    conn.prepare_cached("DELETE FROM observation WHERE entity_id = ?1")?
        .execute([from])?;
    Ok(())
}

/// Logs the removal of every observation of `entity` (before a cascading delete).
pub(crate) fn log_removal_of_all(
    conn: &Connection,
    entity: EntityId,
    ctx: &WriteCtx,
) -> Result<()> {
    change::log_each(
        conn,
        ctx,
        ChangeOp::ObservationRemoved,
        "SELECT id FROM observation WHERE entity_id = ?1 ORDER BY id",
        entity.get(),
    )
}
