//! Fusion: the channels' ranked lists become one ranking.

use std::collections::HashMap;

use crate::retrieve::{Fusion, Reason, Target};

/// One channel's contribution: its hits best first, with the channel's own score.
pub(crate) struct Channel {
    pub(crate) weight: f32,
    pub(crate) hits: Vec<(Target, f32, Reason)>,
}

/// A fused hit: target, score, and every channel's reason, in channel order.
pub(crate) type Fused = (Target, f32, Vec<Reason>);

/// Fuses `channels`, best first; ties are broken by `order_key` so results never depend
/// on hash order.
pub(crate) fn fuse<K: Ord>(
    channels: Vec<Channel>,
    fusion: Fusion,
    order_key: impl Fn(Target) -> K,
) -> Vec<Fused> {
    let mut fused: HashMap<Target, (f32, Vec<Reason>)> = HashMap::new();
    for channel in channels {
        if channel.weight <= 0.0 {
            continue;
        }
        let best = channel
            .hits
            .iter()
            .map(|h| h.1)
            .fold(f32::MIN_POSITIVE, f32::max);
        let worst = channel.hits.iter().map(|h| h.1).fold(best, f32::min);
        for (i, (target, score, why)) in channel.hits.into_iter().enumerate() {
            let contribution = match fusion {
                Fusion::ReciprocalRank { k } => channel.weight / (k + (i + 1) as f32),
                Fusion::Score => channel.weight * (score.max(0.0) / best),
                Fusion::MinMax => channel.weight * min_max(score, worst, best),
            };
            let entry = fused.entry(target).or_default();
            entry.0 += contribution;
            entry.1.push(why);
        }
    }
    let mut ranked: Vec<Fused> = fused
        .into_iter()
        .map(|(t, (score, why))| (t, score, why))
        .collect();
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| order_key(a.0).cmp(&order_key(b.0)))
    });
    ranked
}

/// `score` mapped from `[worst, best]` onto `[0, 1]`; a channel whose candidates all
/// score alike gives each of them 1.
fn min_max(score: f32, worst: f32, best: f32) -> f32 {
    if best > worst {
        ((score - worst) / (best - worst)).clamp(0.0, 1.0)
    } else {
        1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ChunkId;

    fn chunk(id: i64) -> Target {
        Target::Chunk(ChunkId::from_raw(id))
    }

    fn bm25(rank: usize) -> Reason {
        Reason::Bm25 { rank, score: 0.0 }
    }

    fn key(t: Target) -> i64 {
        match t {
            Target::Chunk(id) => id.get(),
            _ => 0,
        }
    }

    #[test]
    fn reciprocal_rank_rewards_agreement() {
        let a = Channel {
            weight: 1.0,
            hits: vec![(chunk(1), 9.0, bm25(1)), (chunk(2), 8.0, bm25(2))],
        };
        let b = Channel {
            weight: 1.0,
            hits: vec![(chunk(2), 0.9, bm25(1)), (chunk(3), 0.8, bm25(2))],
        };
        let ranked = fuse(vec![a, b], Fusion::ReciprocalRank { k: 60.0 }, key);
        let order: Vec<Target> = ranked.iter().map(|r| r.0).collect();
        assert_eq!(order, [chunk(2), chunk(1), chunk(3)]);
        assert_eq!(ranked[0].2.len(), 2);
    }

    #[test]
    fn score_fusion_normalizes_each_channel() {
        // Channel a's raw scores are 100x larger; normalized, b's clear winner wins.
        let a = Channel {
            weight: 1.0,
            hits: vec![(chunk(1), 100.0, bm25(1)), (chunk(2), 99.0, bm25(2))],
        };
        let b = Channel {
            weight: 1.0,
            hits: vec![(chunk(2), 1.0, bm25(1)), (chunk(1), 0.1, bm25(2))],
        };
        let ranked = fuse(vec![a, b], Fusion::Score, key);
        assert_eq!(ranked[0].0, chunk(2));
        assert!((ranked[0].1 - 1.99).abs() < 1e-6);
    }

    #[test]
    fn min_max_spreads_a_narrow_band() {
        // Cosine scores between 0.79 and 0.87: divided by the best they would all land in
        // 0.91..1; min-max spreads them over 0..1, so the vector channel can rank.
        let lexical = Channel {
            weight: 1.0,
            hits: vec![
                (chunk(1), 10.0, bm25(1)),
                (chunk(2), 9.0, bm25(2)),
                (chunk(4), 5.0, bm25(3)),
            ],
        };
        let vectors = Channel {
            weight: 1.0,
            hits: vec![
                (chunk(2), 0.87, bm25(1)),
                (chunk(3), 0.83, bm25(2)),
                (chunk(1), 0.79, bm25(3)),
            ],
        };
        let ranked = fuse(vec![lexical, vectors], Fusion::MinMax, key);
        let order: Vec<Target> = ranked.iter().map(|r| r.0).collect();
        assert_eq!(order, [chunk(2), chunk(1), chunk(3), chunk(4)]);
        assert!((ranked[0].1 - 1.8).abs() < 1e-5, "{}", ranked[0].1);
        assert!((ranked[1].1 - 1.0).abs() < 1e-5, "{}", ranked[1].1);
        assert!((ranked[2].1 - 0.5).abs() < 1e-5, "{}", ranked[2].1);
        // Divided by the best instead, the vector channel's worst still scores 0.91.
        let flat = Channel {
            weight: 1.0,
            hits: vec![(chunk(2), 0.87, bm25(1)), (chunk(1), 0.79, bm25(2))],
        };
        let ranked = fuse(vec![flat], Fusion::Score, key);
        assert!(ranked[1].1 > 0.9);
    }

    #[test]
    fn min_max_of_one_candidate_is_one() {
        assert_eq!(min_max(3.0, 3.0, 3.0), 1.0);
        assert_eq!(min_max(2.0, 1.0, 3.0), 0.5);
    }

    #[test]
    fn zero_weight_channels_are_ignored() {
        let a = Channel {
            weight: 0.0,
            hits: vec![(chunk(1), 1.0, bm25(1))],
        };
        assert!(fuse(vec![a], Fusion::Score, key).is_empty());
    }
}
