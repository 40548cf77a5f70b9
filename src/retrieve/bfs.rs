//! The graph channel: breadth-first expansion over relations from the BM25 seeds.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;
use crate::id::{EntityId, RelationId};

/// How many entities of the first level are expanded at most; each further level
/// expands half as many as the one before, down to [`MIN_BEAM`].
const BEAM: usize = 32;
/// The narrowest beam.
const MIN_BEAM: usize = 8;

/// An entity to expand from: its distance from the matched text (0 for an entity that
/// matched itself, 1 for the ends of a matched relation or the entity of a matched
/// observation) and its weight (from its BM25 rank).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seed {
    pub(crate) entity: EntityId,
    pub(crate) distance: u32,
    pub(crate) weight: f32,
}

/// What the expansion reached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reached {
    pub(crate) distance: u32,
    pub(crate) seed: EntityId,
    pub(crate) score: f32,
}

/// How far and how wide to expand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expansion {
    pub(crate) depth: u32,
    pub(crate) fan_out: usize,
    pub(crate) decay: f32,
    /// How many relations the caller can use at most (the search limit).
    pub(crate) want: usize,
}

/// Relations and entities within `depth` hops of the seeds (the seeds themselves are not
/// returned: they are already in the answer as what the query matched). A relation one hop from an
/// entity at distance `d` is at distance `d + 1`, scored `weight * decay^d`; each entity
/// contributes at most `fan_out` relations (most-mentioned first) so hubs do not flood
/// the answer.
pub(crate) fn expand(
    conn: &Connection,
    seeds: &[Seed],
    how: Expansion,
) -> Result<(HashMap<RelationId, Reached>, HashMap<EntityId, Reached>)> {
    let mut entities: HashMap<EntityId, Reached> = HashMap::new();
    for s in seeds {
        let reached = Reached {
            distance: s.distance,
            seed: s.entity,
            score: s.weight,
        };
        keep_best(&mut entities, s.entity, reached);
    }
    let mut relations: HashMap<RelationId, Reached> = HashMap::new();
    for level in 0..how.depth {
        let mut frontier: Vec<(EntityId, Reached)> = entities
            .iter()
            .filter(|(_, r)| r.distance == level)
            .map(|(e, r)| (*e, *r))
            .collect();
        // A beam: only the best-scored entities of a level are expanded, so the work per
        // level is bounded by BEAM × fan_out whatever the graph looks like.
        // Deeper levels score by `decay` less, and get a beam narrowed likewise.
        if frontier.is_empty() {
            // The graph is exhausted: deeper levels would find nothing either.
            break;
        }
        frontier.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then(a.0.cmp(&b.0)));
        frontier.truncate(BEAM.checked_shr(level).unwrap_or(0).max(MIN_BEAM));
        // On the last level the entities are only a source of relations, all of one
        // entity's scoring alike and below the ones before them (the frontier is in
        // score order): once `want` relations are found, the rest cannot outrank them.
        let last = level + 1 == how.depth;
        let mut found = 0;
        for (entity, from) in frontier {
            let fan_out = if last {
                how.fan_out.min(how.want.saturating_sub(found))
            } else {
                how.fan_out
            };
            if fan_out == 0 {
                break;
            }
            for (relation, other) in neighbourhood(conn, entity, fan_out)? {
                let reached = Reached {
                    distance: level + 1,
                    seed: from.seed,
                    score: from.score * how.decay.powi(level as i32),
                };
                if !relations.contains_key(&relation) {
                    found += 1;
                }
                keep_best(&mut relations, relation, reached);
                if !last {
                    keep_best(
                        &mut entities,
                        other,
                        Reached {
                            score: reached.score * how.decay,
                            ..reached
                        },
                    );
                }
            }
        }
    }
    entities.retain(|entity, _| !seeds.iter().any(|s| s.entity == *entity));
    Ok((relations, entities))
}

fn keep_best<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Reached>, key: K, reached: Reached) {
    map.entry(key)
        .and_modify(|r| {
            if (reached.distance, -reached.score) < (r.distance, -r.score) {
                *r = reached;
            }
        })
        .or_insert(reached);
}

/// Up to `fan_out` relations of `entity` in either direction, most-mentioned first, with
/// the entity at the other end. Two ordered index walks, each stopped at `fan_out`, then
/// merged: one `UNION ... ORDER BY` would make SQLite sort every relation of a hub.
fn neighbourhood(
    conn: &Connection,
    entity: EntityId,
    fan_out: usize,
) -> Result<Vec<(RelationId, EntityId)>> {
    let limit = fan_out as i64;
    let mut out: Vec<(i64, RelationId, EntityId)> = Vec::with_capacity(2 * fan_out);
    for sql in [
        "SELECT mentions, id, object_id FROM relation WHERE subject_id = ?1
         ORDER BY mentions DESC, id LIMIT ?2",
        "SELECT mentions, id, subject_id FROM relation WHERE object_id = ?1 AND subject_id != ?1
         ORDER BY mentions DESC, id LIMIT ?2",
    ] {
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(rusqlite::params![entity, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    out.truncate(fan_out);
    Ok(out.into_iter().map(|(_, r, e)| (r, e)).collect())
}
