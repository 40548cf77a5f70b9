//! Keeping the index at few segments: the merge policy, and merging everything while the
//! indexer is idle.
//!
//! A query is scored segment by segment, each with its own top-k and its own term
//! lookups, so many mid-sized segments cost search time. tantivy's default merge policy
//! waits for 8 segments of a size class before merging them; merging as soon as 3 are
//! alike keeps a large index at a few segments (measured in `docs/benchmarks.md`).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use tantivy::indexer::LogMergePolicy;
use tantivy::{Index, IndexWriter};

/// How many segments of one size class make tantivy merge them (its default is 8).
const MERGE_AT_SEGMENTS: usize = 3;
/// Idle compaction merges everything once the smaller segments hold 1/this of the
/// largest (see [`Compaction`]).
const COMPACT_RATIO: u64 = 8;
/// At least this long between two idle compactions.
const COMPACT_PAUSE: Duration = Duration::from_secs(1);

/// Sets cairn's merge policy on a new writer.
pub(crate) fn set_merge_policy(writer: &IndexWriter) {
    let mut policy = LogMergePolicy::default();
    policy.set_min_num_segments(MERGE_AT_SEGMENTS);
    writer.set_merge_policy(Box::new(policy));
}

/// Merging every segment into one while the indexer is idle.
///
/// The merge policy keeps segments of one size class few, but a large index still ends
/// up as a few segments of different sizes, and every segment costs each query its own
/// term lookups and its own top-k (measured in `docs/benchmarks.md`: 4 segments search
/// about 1.4 times slower than 1). When no change arrived since the last round and the
/// smaller segments hold at least `1 / COMPACT_RATIO` of the largest one's documents, the
/// whole index is merged in the background; tantivy publishes the result and readers
/// reload it. The ratio bounds how often a document is rewritten by these merges.
#[derive(Default)]
pub(crate) struct Compaction {
    running: Option<Pin<Box<tantivy::FutureResult<Option<tantivy::index::SegmentMeta>>>>>,
    last_start: Option<Instant>,
}

impl Compaction {
    /// Whether a merge it started is still running.
    pub(crate) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Called after each indexer round that holds the writer; `idle`: the round applied
    /// nothing.
    pub(crate) fn tick(&mut self, index: &Index, writer: &mut IndexWriter, idle: bool) {
        if let Some(merge) = &mut self.running {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            if merge.as_mut().poll(&mut cx).is_pending() {
                return;
            }
            // A failed merge (e.g. a segment the merge policy was merging) changed
            // nothing; the next idle round may try again.
            self.running = None;
        }
        if !idle || self.last_start.is_some_and(|t| t.elapsed() < COMPACT_PAUSE) {
            return;
        }
        let Ok(segments) = index.searchable_segment_metas() else {
            return;
        };
        if !worth_compacting(&segments) {
            return;
        }
        let ids: Vec<_> = segments.iter().map(|s| s.id()).collect();
        self.last_start = Some(Instant::now());
        self.running = Some(Box::pin(writer.merge(&ids)));
    }
}

/// True when the segments other than the largest hold at least `1 / COMPACT_RATIO` of
/// its documents.
fn worth_compacting(segments: &[tantivy::index::SegmentMeta]) -> bool {
    let sizes: Vec<u64> = segments.iter().map(|s| u64::from(s.max_doc())).collect();
    small_ones_add_up(&sizes)
}

fn small_ones_add_up(sizes: &[u64]) -> bool {
    let largest = sizes.iter().copied().max().unwrap_or(0);
    let rest: u64 = sizes.iter().sum::<u64>() - largest;
    sizes.len() > 1 && rest.saturating_mul(COMPACT_RATIO) >= largest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compaction_waits_for_the_small_segments_to_add_up() {
        assert!(!small_ones_add_up(&[]));
        assert!(!small_ones_add_up(&[1_000]));
        assert!(small_ones_add_up(&[10, 10]));
        assert!(!small_ones_add_up(&[800, 50, 49]));
        assert!(small_ones_add_up(&[800, 50, 50]));
    }

    #[test]
    fn an_idle_index_is_compacted_into_one_segment() {
        let memory = crate::Memory::ephemeral().unwrap();
        // Each sync is its own index commit, so each write leaves its own segment.
        for i in 0..6 {
            memory
                .add_triple((format!("E{i}").as_str(), "r", "X"))
                .unwrap();
            memory.sync().unwrap();
        }
        let index = memory.search_index();
        let deadline = Instant::now() + Duration::from_secs(30);
        while index.segments() > 1 {
            assert!(
                Instant::now() < deadline,
                "still {} segments",
                index.segments()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let hits = memory
            .search("E3", &crate::SearchOptions::new().depth(0))
            .unwrap();
        assert!(hits.iter().any(|h| h.text == "E3"), "{hits:?}");
    }
}
