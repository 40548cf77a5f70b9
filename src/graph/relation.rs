//! Relations: knowledge triples, unique per (subject, predicate key, object).

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Error, Result};
use crate::graph::change::{self, ChangeOp};
use crate::graph::input::ValidTriple;
use crate::graph::{WriteCtx, entity};
use crate::id::{EntityId, EpisodeId, RelationId};
use crate::time::Timestamp;

/// A stored triple, subject –predicate→ object.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Relation {
    /// Its id.
    pub id: RelationId,
    /// The subject entity.
    pub subject: EntityId,
    /// The subject's display name.
    pub subject_name: String,
    /// The predicate as first written.
    pub predicate: String,
    /// The object entity.
    pub object: EntityId,
    /// The object's display name.
    pub object_name: String,
    /// How many times the triple was asserted.
    pub mentions: i64,
    /// When it was first asserted.
    pub first_seen: Timestamp,
    /// When it was last asserted.
    pub last_seen: Timestamp,
    /// Start of validity, if known.
    pub valid_from: Option<Timestamp>,
    /// End of validity, if known (see [`crate::Memory::invalidate`]).
    pub valid_to: Option<Timestamp>,
    /// The episode that first asserted it.
    pub episode: Option<EpisodeId>,
}

impl Relation {
    /// True if the fact holds at `at` (unknown bounds count as open).
    pub fn is_valid_at(&self, at: Timestamp) -> bool {
        self.valid_from.is_none_or(|from| from <= at) && self.valid_to.is_none_or(|to| at < to)
    }
}

/// Which relations of an entity to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Relations where the entity is the subject.
    Outgoing,
    /// Relations where the entity is the object.
    Incoming,
    /// Both.
    Both,
}

/// Stores the triple (finding or creating its ends), or counts one more mention of it.
pub(crate) fn add(conn: &Connection, triple: &ValidTriple, ctx: &WriteCtx) -> Result<RelationId> {
    let subject = entity::resolve_ref(conn, &triple.subject, ctx)?;
    let object = entity::resolve_ref(conn, &triple.object, ctx)?;
    upsert(conn, subject, triple, object, ctx)
}

/// Stores the triple between two existing entities; `triple`'s own ends are ignored.
pub(crate) fn upsert(
    conn: &Connection,
    subject: EntityId,
    triple: &ValidTriple,
    object: EntityId,
    ctx: &WriteCtx,
) -> Result<RelationId> {
    // Insert first and fall back to an update: a plain INSERT is the common case in
    // ingest, and avoiding RETURNING keeps SQLite from buffering a result row.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO relation(subject_id, predicate, predicate_key, object_id, mentions,
                                  first_seen, last_seen, valid_from, valid_to, episode_id)
             VALUES (?1, ?2, ?3, ?4, 1, ?5, ?5, ?6, ?7, ?8)
             ON CONFLICT (subject_id, predicate_key, object_id) DO NOTHING",
        )?
        .execute(params![
            subject,
            triple.predicate.display,
            triple.predicate.key,
            object,
            ctx.at,
            triple.valid_from,
            triple.valid_to,
            ctx.episode
        ])?;
    let (id, op) = if inserted == 1 {
        (
            RelationId::from_raw(conn.last_insert_rowid()),
            ChangeOp::RelationCreated,
        )
    } else {
        let id = conn
            .prepare_cached(
                "UPDATE relation SET
                    mentions = mentions + 1,
                    last_seen = max(last_seen, ?4),
                    valid_from = coalesce(?5, valid_from),
                    valid_to = coalesce(?6, valid_to)
                 WHERE subject_id = ?1 AND predicate_key = ?2 AND object_id = ?3
                 RETURNING id",
            )?
            .query_row(
                params![
                    subject,
                    triple.predicate.key,
                    object,
                    ctx.at,
                    triple.valid_from,
                    triple.valid_to
                ],
                |r| r.get(0),
            )?;
        (id, ChangeOp::RelationMentioned)
    };
    change::log(conn, ctx, op, id.get(), None)?;
    Ok(id)
}

/// The triple `subject –predicate_key→ object`, if stored.
pub(crate) fn find(
    conn: &Connection,
    subject: EntityId,
    predicate_key: &str,
    object: EntityId,
) -> Result<Option<RelationId>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM relation WHERE subject_id = ?1 AND predicate_key = ?2 AND object_id = ?3",
        )?
        .query_row(params![subject, predicate_key, object], |r| r.get(0))
        .optional()?)
}

/// Marks the fact as no longer holding from `at` on.
pub(crate) fn invalidate(
    conn: &Connection,
    id: RelationId,
    at: Timestamp,
    ctx: &WriteCtx,
) -> Result<()> {
    let changed = conn
        .prepare_cached("UPDATE relation SET valid_to = ?2 WHERE id = ?1")?
        .execute(params![id, at])?;
    if changed == 0 {
        return Err(Error::not_found("relation", id));
    }
    change::log(conn, ctx, ChangeOp::RelationUpdated, id.get(), None)
}

/// Removes the triple; false if it did not exist.
pub(crate) fn remove(conn: &Connection, id: RelationId, ctx: &WriteCtx) -> Result<bool> {
    let removed = conn
        .prepare_cached("DELETE FROM relation WHERE id = ?1")?
        .execute([id])?;
    if removed > 0 {
        change::log(conn, ctx, ChangeOp::RelationRemoved, id.get(), None)?;
    }
    Ok(removed > 0)
}

const SELECT: &str =
    "SELECT r.id, r.subject_id, s.name, r.predicate, r.object_id, o.name, r.mentions,
            r.first_seen, r.last_seen, r.valid_from, r.valid_to, r.episode_id
     FROM relation r JOIN entity s ON s.id = r.subject_id JOIN entity o ON o.id = r.object_id";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Relation> {
    Ok(Relation {
        id: row.get(0)?,
        subject: row.get(1)?,
        subject_name: row.get(2)?,
        predicate: row.get(3)?,
        object: row.get(4)?,
        object_name: row.get(5)?,
        mentions: row.get(6)?,
        first_seen: row.get(7)?,
        last_seen: row.get(8)?,
        valid_from: row.get(9)?,
        valid_to: row.get(10)?,
        episode: row.get(11)?,
    })
}

pub(crate) fn get(conn: &Connection, id: RelationId) -> Result<Option<Relation>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE r.id = ?1"))?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

pub(crate) fn of_entity(
    conn: &Connection,
    id: EntityId,
    direction: Direction,
) -> Result<Vec<Relation>> {
    let filter = match direction {
        Direction::Outgoing => "r.subject_id = ?1",
        Direction::Incoming => "r.object_id = ?1",
        Direction::Both => "(r.subject_id = ?1 OR r.object_id = ?1)",
    };
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE {filter} ORDER BY r.id"))?;
    let rows = stmt.query_map([id], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The relations with at least one end among `entities`, each once, at most `limit`
/// (ordered by id), and whether more exist. For each entity in turn its relations are
/// read most mentioned first, and reading stops once `limit + 1` are collected: a hub
/// with a million relations costs `limit` rows, not a million, and the first entities
/// (the best ranked, for a search) get their strongest relations in.
pub(crate) fn touching(
    conn: &Connection,
    entities: &[EntityId],
    limit: usize,
) -> Result<(Vec<Relation>, bool)> {
    // Both orders are served by the (end, mentions DESC, id) indexes: no sort, and the
    // rows are stepped lazily, so stopping early stops the scan.
    let mut outgoing = conn.prepare_cached(&format!(
        "{SELECT} WHERE r.subject_id = ?1 ORDER BY r.mentions DESC, r.id"
    ))?;
    let mut incoming = conn.prepare_cached(&format!(
        "{SELECT} WHERE r.object_id = ?1 ORDER BY r.mentions DESC, r.id"
    ))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    'entities: for &id in entities {
        for stmt in [&mut outgoing, &mut incoming] {
            for r in stmt.query_map([id], from_row)? {
                let r = r?;
                if seen.insert(r.id) {
                    if out.len() == limit {
                        break 'entities;
                    }
                    out.push(r);
                }
            }
        }
    }
    let truncated = out.len() < seen.len();
    out.sort_by_key(|r| r.id);
    Ok((out, truncated))
}

/// Distinct entities one relation away, in either direction, by id.
pub(crate) fn neighbours(conn: &Connection, id: EntityId) -> Result<Vec<EntityId>> {
    let mut stmt = conn.prepare_cached(
        "SELECT object_id FROM relation WHERE subject_id = ?1 AND object_id != ?1
         UNION
         SELECT subject_id FROM relation WHERE object_id = ?1 AND subject_id != ?1
         ORDER BY 1",
    )?;
    let rows = stmt.query_map([id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Merge support: re-points every relation of `from` to `to`. A triple that then
/// collides with one `to` already has is folded into it (mentions added, first/last seen
/// widened) and removed.
pub(crate) fn move_endpoints(
    conn: &Connection,
    from: EntityId,
    to: EntityId,
    ctx: &WriteCtx,
) -> Result<()> {
    struct Moving {
        id: RelationId,
        subject: EntityId,
        key: String,
        object: EntityId,
    }
    let moving: Vec<Moving> = conn
        .prepare_cached(
            "SELECT id, subject_id, predicate_key, object_id FROM relation
             WHERE subject_id = ?1 OR object_id = ?1 ORDER BY id",
        )?
        .query_map([from], |r| {
            Ok(Moving {
                id: r.get(0)?,
                subject: r.get(1)?,
                key: r.get(2)?,
                object: r.get(3)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let swap = |e: EntityId| if e == from { to } else { e };
    for m in moving {
        let (subject, object) = (swap(m.subject), swap(m.object));
        match find(conn, subject, &m.key, object)? {
            Some(twin) => fold_into(conn, m.id, twin, ctx)?,
            None => {
                conn.prepare_cached(
                    "UPDATE relation SET subject_id = ?2, object_id = ?3 WHERE id = ?1",
                )?
                .execute(params![m.id, subject, object])?;
                change::log(conn, ctx, ChangeOp::RelationUpdated, m.id.get(), None)?;
            }
        }
    }
    Ok(())
}

fn fold_into(conn: &Connection, dup: RelationId, twin: RelationId, ctx: &WriteCtx) -> Result<()> {
    conn.prepare_cached(
        "UPDATE relation SET
            mentions = relation.mentions + d.mentions,
            first_seen = min(relation.first_seen, d.first_seen),
            last_seen = max(relation.last_seen, d.last_seen),
            valid_from = coalesce(relation.valid_from, d.valid_from),
            valid_to = coalesce(relation.valid_to, d.valid_to)
         FROM (SELECT mentions, first_seen, last_seen, valid_from, valid_to FROM relation WHERE id = ?2) AS d
         WHERE relation.id = ?1",
    )?
    .execute([twin, dup])?;
    conn.prepare_cached("DELETE FROM relation WHERE id = ?1")?
        .execute([dup])?;
    change::log(conn, ctx, ChangeOp::RelationUpdated, twin.get(), None)?;
    change::log(conn, ctx, ChangeOp::RelationRemoved, dup.get(), None)
}

/// Logs the removal of every relation of `id` (before a cascading entity delete).
pub(crate) fn log_removal_of_all(conn: &Connection, id: EntityId, ctx: &WriteCtx) -> Result<()> {
    change::log_each(
        conn,
        ctx,
        ChangeOp::RelationRemoved,
        "SELECT id FROM relation WHERE subject_id = ?1 OR object_id = ?1 ORDER BY id",
        id.get(),
    )
}
