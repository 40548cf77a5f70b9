//! After fusion: the head of the ranking reordered the way a reader expects.
//!
//! 1. **Repetition is evidence.** A relation asserted five times is more likely true, and
//!    more central, than one asserted once: its score is multiplied by
//!    `1 + MENTION_BOOST * ln(mentions)`.
//! 2. **Diversity.** Fifty "Person N works at Acme Corp" lines match "Acme Corp" equally
//!    well and say one thing. Walking the ranking best first, every relation that repeats
//!    the (predicate, object) or (subject, predicate) of a relation above it is
//!    multiplied by `REPEAT_DECAY` once per repetition, so the hub's distinct facts
//!    (and the hub itself) come first and the repeats follow.
//!
//! Only relations are touched; a search of chunks alone is returned as fused.

use std::collections::HashMap;

use rusqlite::Connection;

use crate::error::Result;
use crate::retrieve::fusion::Fused;
use crate::retrieve::{Target, json_ids};

/// Weight of `ln(mentions)` in a relation's boost.
const MENTION_BOOST: f32 = 0.25;
/// Score factor per earlier relation of the same shape.
const REPEAT_DECAY: f32 = 0.5;

/// The facts of a relation the rerank needs.
struct Shape {
    subject: i64,
    predicate: String,
    object: i64,
    mentions: i64,
}

/// Reorders `ranked` (best first). The whole list is reordered, not a head of it: a
/// repeat pushed down must make room for what was below it, and the list is already
/// bounded by the channels' candidate counts.
pub(crate) fn rerank(conn: &Connection, mut ranked: Vec<Fused>) -> Result<Vec<Fused>> {
    let relations: Vec<i64> = ranked
        .iter()
        .filter_map(|(target, _, _)| match target {
            Target::Relation(id) => Some(id.get()),
            _ => None,
        })
        .collect();
    if relations.is_empty() {
        return Ok(ranked);
    }
    let shapes = shapes(conn, &relations)?;
    for (target, score, _) in &mut ranked {
        if let Target::Relation(id) = target
            && let Some(shape) = shapes.get(&id.get())
        {
            *score *= 1.0 + MENTION_BOOST * (shape.mentions.max(1) as f32).ln();
        }
    }
    sort(&mut ranked);
    // Repeats are counted in the boosted order, best first.
    let mut seen: HashMap<(i64, &str, i64), u32> = HashMap::new();
    let mut factors = Vec::with_capacity(ranked.len());
    for (target, _, _) in &ranked {
        let mut factor = 1.0;
        if let Target::Relation(id) = target
            && let Some(s) = shapes.get(&id.get())
        {
            // -1 marks the free end, so the two shapes never collide.
            let by_object = (-1, s.predicate.as_str(), s.object);
            let by_subject = (s.subject, s.predicate.as_str(), -1);
            let repeats = seen.get(&by_object).copied().unwrap_or(0)
                + seen.get(&by_subject).copied().unwrap_or(0);
            factor = REPEAT_DECAY.powi(repeats.min(64) as i32);
            *seen.entry(by_object).or_default() += 1;
            *seen.entry(by_subject).or_default() += 1;
        }
        factors.push(factor);
    }
    for ((_, score, _), factor) in ranked.iter_mut().zip(factors) {
        *score *= factor;
    }
    sort(&mut ranked);
    Ok(ranked)
}

/// Best first; ties by target, so the order never depends on hash order.
fn sort(ranked: &mut [Fused]) {
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| crate::retrieve::order_key(a.0).cmp(&crate::retrieve::order_key(b.0)))
    });
}

fn shapes(conn: &Connection, ids: &[i64]) -> Result<HashMap<i64, Shape>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, subject_id, predicate_key, object_id, mentions FROM relation
         WHERE id IN (SELECT value FROM json_each(?1))",
    )?;
    let rows = stmt.query_map([json_ids(ids.iter().copied())], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            Shape {
                subject: r.get(1)?,
                predicate: r.get(2)?,
                object: r.get(3)?,
                mentions: r.get(4)?,
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
