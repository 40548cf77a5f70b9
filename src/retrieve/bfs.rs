//! The graph channel: breadth-first expansion over relations from the BM25 seeds.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;
use crate::id::{EntityId, RelationId};

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
        let frontier: Vec<(EntityId, Reached)> = entities
            .iter()
            .filter(|(_, r)| r.distance == level)
            .map(|(e, r)| (*e, *r))
            .collect();
        for (entity, from) in frontier {
            for (relation, other) in neighbourhood(conn, entity, how.fan_out)? {
                let reached = Reached {
                    distance: level + 1,
                    seed: from.seed,
                    score: from.score * how.decay.powi(level as i32),
                };
                keep_best(&mut relations, relation, reached);
                if level + 1 < how.depth {
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
/// the entity at the other end.
fn neighbourhood(
    conn: &Connection,
    entity: EntityId,
    fan_out: usize,
) -> Result<Vec<(RelationId, EntityId)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, object_id, mentions FROM relation WHERE subject_id = ?1
         UNION ALL
         SELECT id, subject_id, mentions FROM relation WHERE object_id = ?1 AND subject_id != ?1
         ORDER BY 3 DESC, 1 LIMIT ?2",
    )?;
    let rows = stmt.query_map(rusqlite::params![entity, fan_out as i64], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
