//! Entities and their aliases: find-or-create, resolve, alias, rename, merge, delete.

use rusqlite::{Connection, OptionalExtension, params};

use crate::db::write::is_unique_violation;
use crate::error::{Error, Result};
use crate::graph::change::{self, ChangeOp};
use crate::graph::input::{ValidName, ValidRef};
use crate::graph::{WriteCtx, mention, observation, relation};
use crate::id::{EntityId, EpisodeId};
use crate::normalize::normalize_name;
use crate::time::Timestamp;

/// A thing the agents talk about.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Entity {
    /// Its id.
    pub id: EntityId,
    /// Display name: what the first writer wrote (or the last rename).
    pub name: String,
    /// Free-text kind, e.g. `person`, `organization`.
    pub kind: Option<String>,
    /// Free-text summary.
    pub summary: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// The episode that created it.
    pub episode: Option<EpisodeId>,
}

/// One name an entity is reached by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alias {
    /// The normalized key (unique across the memory).
    pub key: String,
    /// The name as it was first written.
    pub name: String,
}

/// The entity that owns `key`, if any.
pub(crate) fn lookup(conn: &Connection, key: &str) -> Result<Option<EntityId>> {
    let mut stmt = conn.prepare_cached("SELECT entity_id FROM alias WHERE key = ?1")?;
    Ok(stmt.query_row([key], |r| r.get(0)).optional()?)
}

/// Looks the name up, creating the entity if nobody owns its key.
pub(crate) fn find_or_create(
    conn: &Connection,
    name: &ValidName,
    ctx: &WriteCtx,
) -> Result<EntityId> {
    match lookup(conn, &name.key)? {
        Some(id) => Ok(id),
        None => insert_or_winner(conn, name, ctx),
    }
}

/// Inserts entity + alias; if the key was taken meanwhile (UNIQUE / PRIMARY KEY
/// violation: another process committed it after our lookup), removes the entity row it
/// just inserted and returns the winner. No savepoint: the entity row is the only thing
/// written before the alias, and deleting it by id undoes it exactly, without making
/// SQLite journal every page the statement touches.
pub(crate) fn insert_or_winner(
    conn: &Connection,
    name: &ValidName,
    ctx: &WriteCtx,
) -> Result<EntityId> {
    conn.prepare_cached(
        "INSERT INTO entity(name, created_at, updated_at, episode_id) VALUES (?1, ?2, ?2, ?3)",
    )?
    .execute(params![name.display, ctx.at, ctx.episode])?;
    let id = EntityId::from_raw(conn.last_insert_rowid());
    match insert_alias(conn, id, name, ctx) {
        Ok(()) => {
            change::log(conn, ctx, ChangeOp::EntityCreated, id.get(), None)?;
            Ok(id)
        }
        Err(e) if is_unique_violation(&e) => {
            conn.prepare_cached("DELETE FROM entity WHERE id = ?1")?
                .execute([id])?;
            lookup(conn, &name.key)?.ok_or_else(|| Error::not_found("entity", &name.key))
        }
        Err(e) => Err(e.into()),
    }
}

fn insert_alias(
    conn: &Connection,
    id: EntityId,
    name: &ValidName,
    ctx: &WriteCtx,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO alias(key, entity_id, name, created_at, episode_id) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![name.key, id, name.display, ctx.at, ctx.episode])?;
    Ok(())
}

/// Turns a checked reference into an id: names are found or created, ids must exist.
pub(crate) fn resolve_ref(conn: &Connection, r: &ValidRef, ctx: &WriteCtx) -> Result<EntityId> {
    match r {
        ValidRef::Id(id) => {
            require(conn, *id)?;
            Ok(*id)
        }
        ValidRef::Name(name) => find_or_create(conn, name, ctx),
    }
}

/// Fails with [`Error::NotFound`] unless the entity exists.
pub(crate) fn require(conn: &Connection, id: EntityId) -> Result<()> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM entity WHERE id = ?1")?;
    match stmt.query_row([id], |_| Ok(())).optional()? {
        Some(()) => Ok(()),
        None => Err(Error::not_found("entity", id)),
    }
}

pub(crate) fn get(conn: &Connection, id: EntityId) -> Result<Option<Entity>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, kind, summary, created_at, updated_at, episode_id FROM entity WHERE id = ?1",
    )?;
    let entity = stmt
        .query_row([id], |row| {
            Ok(Entity {
                id: row.get(0)?,
                name: row.get(1)?,
                kind: row.get(2)?,
                summary: row.get(3)?,
                created_at: row.get(4)?,
                updated_at: row.get(5)?,
                episode: row.get(6)?,
            })
        })
        .optional()?;
    Ok(entity)
}

pub(crate) fn aliases(conn: &Connection, id: EntityId) -> Result<Vec<Alias>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, name FROM alias WHERE entity_id = ?1 ORDER BY created_at, key",
    )?;
    let rows = stmt.query_map([id], |r| {
        Ok(Alias {
            key: r.get(0)?,
            name: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Makes `name` reach `id`. Adding a name the entity already has is a no-op; a name that
/// belongs to another entity is [`Error::AliasTaken`] (merge the two instead).
pub(crate) fn add_alias(
    conn: &Connection,
    id: EntityId,
    name: &ValidName,
    ctx: &WriteCtx,
) -> Result<bool> {
    require(conn, id)?;
    match lookup(conn, &name.key)? {
        Some(owner) if owner == id => Ok(false),
        Some(owner) => Err(Error::AliasTaken {
            key: name.key.clone(),
            owner: owner.get(),
        }),
        None => {
            insert_alias(conn, id, name, ctx)?;
            let detail = serde_json::json!({ "key": name.key }).to_string();
            change::log(conn, ctx, ChangeOp::AliasAdded, id.get(), Some(&detail))?;
            touch(conn, id, ctx)?;
            Ok(true)
        }
    }
}

/// Gives the entity a new display name; the old names keep resolving to it.
pub(crate) fn rename(
    conn: &Connection,
    id: EntityId,
    name: &ValidName,
    ctx: &WriteCtx,
) -> Result<()> {
    add_alias(conn, id, name, ctx)?;
    conn.prepare_cached("UPDATE entity SET name = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, name.display, ctx.at])?;
    change::log(conn, ctx, ChangeOp::EntityRenamed, id.get(), None)
}

/// Sets kind and/or summary; `None` leaves a field as it is.
pub(crate) fn update(
    conn: &Connection,
    id: EntityId,
    kind: Option<&str>,
    summary: Option<&str>,
    ctx: &WriteCtx,
) -> Result<()> {
    require(conn, id)?;
    conn.prepare_cached(
        "UPDATE entity SET kind = coalesce(?2, kind), summary = coalesce(?3, summary), updated_at = ?4
         WHERE id = ?1",
    )?
    .execute(params![id, kind, summary, ctx.at])?;
    change::log(conn, ctx, ChangeOp::EntityUpdated, id.get(), None)
}

fn touch(conn: &Connection, id: EntityId, ctx: &WriteCtx) -> Result<()> {
    conn.prepare_cached("UPDATE entity SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![id, ctx.at])?;
    Ok(())
}

/// Moves everything of `absorb` onto `keep` and deletes `absorb`: its aliases, relations
/// (a triple both had becomes one, with the mention counts added) and observations
/// (exact duplicates dropped). `keep` inherits kind and summary where it has none.
pub(crate) fn merge(
    conn: &Connection,
    keep: EntityId,
    absorb: EntityId,
    ctx: &WriteCtx,
) -> Result<()> {
    if keep == absorb {
        return Err(Error::invalid_input(
            "merge",
            format!("cannot merge entity {keep} into itself"),
        ));
    }
    require(conn, keep)?;
    require(conn, absorb)?;
    conn.prepare_cached("UPDATE alias SET entity_id = ?1 WHERE entity_id = ?2")?
        .execute([keep, absorb])?;
    relation::move_endpoints(conn, absorb, keep, ctx)?;
    observation::move_all(conn, absorb, keep, ctx)?;
    mention::move_all(conn, absorb, keep)?;
    conn.prepare_cached("UPDATE document SET about_id = ?1 WHERE about_id = ?2")?
        .execute([keep, absorb])?;
    conn.prepare_cached(
        "UPDATE entity SET
            kind = coalesce(kind, (SELECT kind FROM entity WHERE id = ?2)),
            summary = coalesce(summary, (SELECT summary FROM entity WHERE id = ?2)),
            updated_at = ?3
         WHERE id = ?1",
    )?
    .execute(params![keep, absorb, ctx.at])?;
    conn.prepare_cached("DELETE FROM entity WHERE id = ?1")?
        .execute([absorb])?;
    let detail = serde_json::json!({ "absorbed": absorb }).to_string();
    change::log(conn, ctx, ChangeOp::EntityMerged, keep.get(), Some(&detail))?;
    let detail = serde_json::json!({ "merged_into": keep }).to_string();
    change::log(
        conn,
        ctx,
        ChangeOp::EntityDeleted,
        absorb.get(),
        Some(&detail),
    )
}

/// Deletes the entity with its aliases, relations and observations (logging each).
/// Returns false if it did not exist.
pub(crate) fn delete(conn: &Connection, id: EntityId, ctx: &WriteCtx) -> Result<bool> {
    if get(conn, id)?.is_none() {
        return Ok(false);
    }
    relation::log_removal_of_all(conn, id, ctx)?;
    observation::log_removal_of_all(conn, id, ctx)?;
    conn.prepare_cached("DELETE FROM entity WHERE id = ?1")?
        .execute([id])?;
    change::log(conn, ctx, ChangeOp::EntityDeleted, id.get(), None)?;
    Ok(true)
}

/// The `meta` row schema 6 leaves in a file whose alias keys predate the current name
/// keys (invisible characters dropped before NFKC, see `crate::normalize`).
const REKEY_MARK: &str = "rekey_aliases";

/// Whether this file's alias keys still need [`rekey_aliases`].
pub(crate) fn needs_rekey(conn: &Connection) -> Result<bool> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM meta WHERE key = ?1")?;
    Ok(stmt
        .query_row([REKEY_MARK], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Recomputes every alias key with the current [`normalize_name`], once per file. An
/// alias whose new key another entity owns merges the two entities: their names are one
/// name now. A name refused now keeps its old key (and `check` reports it). Returns how
/// many keys changed.
pub(crate) fn rekey_aliases(conn: &Connection, ctx: &WriteCtx) -> Result<usize> {
    if !needs_rekey(conn)? {
        return Ok(0);
    }
    let aliases: Vec<(String, EntityId, String)> = conn
        .prepare("SELECT key, entity_id, name FROM alias ORDER BY created_at, key")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut changed = 0;
    for (old_key, _, name) in aliases {
        let Ok(key) = normalize_name(&name) else {
            continue;
        };
        if key == old_key {
            continue;
        }
        // Read again: an earlier merge may have moved this alias to another entity.
        let Some(entity) = lookup(conn, &old_key)? else {
            continue;
        };
        match lookup(conn, &key)? {
            Some(owner) if owner != entity => merge(conn, owner, entity, ctx)?,
            Some(_) => {}
            None => {
                conn.prepare_cached("UPDATE alias SET key = ?2 WHERE key = ?1")?
                    .execute([&old_key, &key])?;
                changed += 1;
                continue;
            }
        }
        conn.prepare_cached("DELETE FROM alias WHERE key = ?1")?
            .execute([&old_key])?;
        changed += 1;
    }
    conn.prepare_cached("DELETE FROM meta WHERE key = ?1")?
        .execute([REKEY_MARK])?;
    Ok(changed)
}

/// Entities by id, ascending, starting after `after`.
pub(crate) fn list(
    conn: &Connection,
    after: Option<EntityId>,
    limit: usize,
) -> Result<Vec<Entity>> {
    let mut stmt =
        conn.prepare_cached("SELECT id FROM entity WHERE id > ?1 ORDER BY id LIMIT ?2")?;
    let ids: Vec<EntityId> = stmt
        .query_map(params![after.map_or(0, EntityId::get), limit as i64], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    ids.into_iter()
        .filter_map(|id| get(conn, id).transpose())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::migrate;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        migrate::prepare(&c, std::path::Path::new(":memory:"), false).unwrap();
        c
    }

    fn name(n: &str) -> ValidName {
        ValidName::entity(n).unwrap()
    }

    #[test]
    fn find_or_create_is_idempotent_over_variants() {
        let c = conn();
        let ctx = WriteCtx::new(None);
        let a = find_or_create(&c, &name("Acme Corp"), &ctx).unwrap();
        let b = find_or_create(&c, &name("ＡＣＭＥ  corp"), &ctx).unwrap();
        assert_eq!(a, b);
        assert_eq!(get(&c, a).unwrap().unwrap().name, "Acme Corp");
    }

    #[test]
    fn insert_of_a_taken_key_returns_the_winner_and_leaves_no_orphan() {
        let c = conn();
        let ctx = WriteCtx::new(None);
        let winner = find_or_create(&c, &name("Acme"), &ctx).unwrap();
        // Skip the lookup, as if the row had been committed after our re-check.
        let got = insert_or_winner(&c, &name("ACME"), &ctx).unwrap();
        assert_eq!(got, winner);
        let entities: i64 = c
            .query_row("SELECT count(*) FROM entity", [], |r| r.get(0))
            .unwrap();
        let changes: i64 = c
            .query_row("SELECT count(*) FROM change", [], |r| r.get(0))
            .unwrap();
        assert_eq!((entities, changes), (1, 1));
    }

    #[test]
    fn alias_of_another_entity_is_refused() {
        let c = conn();
        let ctx = WriteCtx::new(None);
        let a = find_or_create(&c, &name("Acme"), &ctx).unwrap();
        let w = find_or_create(&c, &name("Widget"), &ctx).unwrap();
        assert!(!add_alias(&c, a, &name("acme"), &ctx).unwrap());
        assert!(add_alias(&c, a, &name("Acme Corporation"), &ctx).unwrap());
        assert!(matches!(
            add_alias(&c, w, &name("ACME"), &ctx),
            Err(Error::AliasTaken { .. })
        ));
        assert_eq!(lookup(&c, "acme corporation").unwrap(), Some(a));
    }
}
