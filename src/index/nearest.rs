//! Nearest-neighbour search over the loaded vectors: exact for small sets, an
//! inverted-file probe with exact scoring for large ones.
//!
//! Scoring every stored f32 row reads `4·d` bytes per row: at 100,000 rows of 384 values
//! that is 150 MB and 38 M multiply-adds per query, many milliseconds on any core. Above
//! [`EXACT_ROWS`] the rows are partitioned into about `√n` lists by two-level k-means
//! (`partition.rs`), and a search scans only the quantized rows of the lists nearest the
//! query, about `1/`[`PROBE_SHARE`] of them, then re-scores the best
//! [`RESCORE_PER_HIT`]`·k` exactly. Returned scores are always exact dot products; only
//! which rows are found is approximate. `docs/benchmarks.md` ("Vector search") has the
//! measurements and the recall against exact search.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::partition::Partition;

use ndarray::ArrayView1;

use crate::error::{Error, Result};

/// Up to this many rows every search is exact: scoring them all costs about as much as
/// the sketch scan would, and recall is 1.
pub const EXACT_ROWS: usize = 8_192;

/// A partitioned search scores about this share of the rows (`1/PROBE_SHARE`)...
pub const PROBE_SHARE: usize = 12;

/// ...and at least this many per wanted hit, so a large `k` still gets a deep enough
/// candidate list.
pub const PROBE_PER_HIT: usize = 10;

/// Of the rows scanned (by their quantized copies), this many per wanted hit are
/// re-scored exactly.
pub const RESCORE_PER_HIT: usize = 4;

/// Stored vectors, partitioned once there are many, for nearest-neighbour search by dot
/// product.
///
/// Exported (hidden) for `benches/vectors.rs` only; not part of cairn's stable API.
#[derive(Debug, Clone)]
pub struct VectorIndex {
    dimension: usize,
    /// Row-major, `dimension` values per row; `Vec` growth is amortized doubling.
    values: Vec<f32>,
    /// `ids[i]` names row `i`.
    ids: Vec<i64>,
    /// The row of each id, so storing an id again replaces its row.
    rows: HashMap<i64, usize>,
    /// Present once the index has held more than [`EXACT_ROWS`] rows; retrained whenever
    /// the rows have doubled since, so training costs amortized O(1) per row.
    partition: Option<Partition>,
}

impl VectorIndex {
    /// An empty index of vectors of `dimension` values.
    pub fn new(dimension: usize) -> Self {
        VectorIndex {
            dimension,
            values: Vec::new(),
            ids: Vec::new(),
            rows: HashMap::new(),
            partition: None,
        }
    }

    /// The length of every stored vector.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The number of stored vectors.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Stores `row` under `id`, replacing the row stored under `id` before. Refuses a row
    /// of another dimension, and non-finite values, whose NaN scores would make the
    /// ranking meaningless.
    pub fn push(&mut self, id: i64, row: ArrayView1<'_, f32>) -> Result<()> {
        if row.len() != self.dimension {
            return Err(Error::invalid_input(
                "vector",
                format!("expected {} values, found {}", self.dimension, row.len()),
            ));
        }
        if let Some(bad) = row.iter().find(|value| !value.is_finite()) {
            return Err(Error::invalid_input(
                "vector",
                format!("it contains the non-finite value {bad}"),
            ));
        }
        let d = self.dimension;
        let at = match self.rows.get(&id) {
            Some(&at) => {
                for (slot, value) in self.values[at * d..(at + 1) * d].iter_mut().zip(row) {
                    *slot = *value;
                }
                at
            }
            None => {
                self.values.extend(row.iter());
                self.rows.insert(id, self.ids.len());
                self.ids.push(id);
                self.ids.len() - 1
            }
        };
        self.partition_row(at);
        Ok(())
    }

    /// Keeps the partition current after row `at` was stored: trains it when the index
    /// first passes [`EXACT_ROWS`] or has doubled since training, else files the row.
    fn partition_row(&mut self, at: usize) {
        let n = self.len();
        match &mut self.partition {
            Some(partition) if !partition.stale(n) => {
                let d = self.dimension;
                partition.file(at, &self.values[at * d..(at + 1) * d]);
            }
            _ if n > EXACT_ROWS => {
                self.partition = Some(Partition::train(&self.values, self.dimension));
            }
            _ => {}
        }
    }

    fn row(&self, at: usize) -> &[f32] {
        &self.values[at * self.dimension..(at + 1) * self.dimension]
    }

    /// The (at most) `k` stored vectors with the highest dot product with `query`, best
    /// first; equal scores are ordered by ascending id so results never depend on
    /// insertion order. A query of another dimension matches nothing.
    ///
    /// Exact up to [`EXACT_ROWS`] rows, or when the rows to score would be half the set
    /// anyway; otherwise [`top_k_probed`](Self::top_k_probed) of about `1/PROBE_SHARE`
    /// of the rows.
    pub fn top_k(&self, query: ArrayView1<'_, f32>, k: usize) -> Vec<(i64, f32)> {
        let wanted = k
            .saturating_mul(PROBE_PER_HIT)
            .max(self.len() / PROBE_SHARE);
        if self.partition.is_none() || wanted >= self.len() / 2 {
            self.top_k_exact(query, k)
        } else {
            self.top_k_probed(query, k, wanted)
        }
    }

    /// [`top_k`](Self::top_k) scoring every row exactly.
    pub fn top_k_exact(&self, query: ArrayView1<'_, f32>, k: usize) -> Vec<(i64, f32)> {
        let Some(query) = self.usable(query, k) else {
            return Vec::new();
        };
        let hits = self
            .ids
            .iter()
            .enumerate()
            .map(|(at, &id)| (id, dot(self.row(at), &query)))
            .collect();
        best(hits, k)
    }

    /// [`top_k`](Self::top_k) through the partition: the rows of the lists nearest
    /// `query` are scored exactly until at least `rows` of them are (all rows when the
    /// index is not partitioned). The scores returned are exact; only which rows are
    /// found is approximate.
    pub fn top_k_probed(
        &self,
        query: ArrayView1<'_, f32>,
        k: usize,
        rows: usize,
    ) -> Vec<(i64, f32)> {
        let Some(partition) = &self.partition else {
            return self.top_k_exact(query, k);
        };
        let Some(query) = self.usable(query, k) else {
            return Vec::new();
        };
        let positions = partition.probe(&query, rows.max(k), k.saturating_mul(RESCORE_PER_HIT));
        let mut scored = Vec::with_capacity(positions.len());
        cairn_kernels::dot_f32_rows(&self.values, &query, &positions, &mut scored);
        let hits = scored
            .into_iter()
            .filter_map(|(at, score)| Some((*self.ids.get(at as usize)?, score)))
            .collect();
        best(hits, k)
    }

    /// The number of lists rows are partitioned into (0 while the index is exact).
    pub fn lists(&self) -> usize {
        self.partition.as_ref().map_or(0, Partition::lists)
    }

    /// The number of rows in the partition's largest list (0 while the index is exact).
    pub fn largest_list(&self) -> usize {
        self.partition.as_ref().map_or(0, Partition::largest_list)
    }

    /// `query` as a contiguous vector, or `None` when nothing can match.
    fn usable(&self, query: ArrayView1<'_, f32>, k: usize) -> Option<Vec<f32>> {
        (k > 0 && !self.is_empty() && query.len() == self.dimension)
            .then(|| query.iter().copied().collect())
    }
}

/// Dot product in sixteen independent lanes, compiled for the CPU's vector instructions
/// (`cairn_kernels`; this crate is built for baseline x86-64, SSE2).
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    cairn_kernels::dot_f32(a, b)
}

/// The best `k` of `hits`, best first. Select then sort: O(n + k log k) instead of
/// sorting all n scores.
fn best(mut hits: Vec<(i64, f32)>, k: usize) -> Vec<(i64, f32)> {
    if k < hits.len() {
        hits.select_nth_unstable_by(k - 1, rank);
        hits.truncate(k);
    }
    hits.sort_unstable_by(rank);
    hits
}

/// Best first: higher score, then lower id. NaN (from a NaN query) ranks below every
/// number, and `-0.0` ties with `0.0`, so this is a total order and the ranking is
/// reproducible.
fn rank(a: &(i64, f32), b: &(i64, f32)) -> Ordering {
    a.1.is_nan()
        .cmp(&b.1.is_nan())
        .then_with(|| b.1.partial_cmp(&a.1).unwrap_or(Ordering::Equal))
        .then_with(|| a.0.cmp(&b.0))
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, array};

    use super::*;
    use crate::embed::{Embedder, HashingEmbedder};
    use crate::index::partition::tests::clustered;

    fn embed_one(embedder: &HashingEmbedder, text: &str) -> Array1<f32> {
        embedder.embed_passages(&[text]).unwrap().row(0).to_owned()
    }

    #[test]
    fn push_checks_the_dimension_and_finiteness() {
        let mut index = VectorIndex::new(3);
        assert_eq!(index.dimension(), 3);
        index.push(1, array![1.0, 0.0, 0.0].view()).unwrap();
        for bad in [array![1.0, 0.0], array![1.0, 0.0, 0.0, 0.0]] {
            let err = index.push(2, bad.view()).unwrap_err();
            assert!(err.is_invalid_input(), "{err}");
            assert!(err.to_string().contains("expected 3 values"), "{err}");
        }
        let err = index
            .push(3, array![f32::NAN, 0.0, 0.0].view())
            .unwrap_err();
        assert!(err.is_invalid_input(), "{err}");
        // Refused rows left nothing behind.
        assert_eq!(index.len(), 1);
        assert_eq!(
            index.top_k(array![1.0, 0.0, 0.0].view(), 10),
            vec![(1, 1.0)]
        );
    }

    #[test]
    fn pushing_an_id_again_replaces_its_row() {
        let mut index = VectorIndex::new(2);
        index.push(1, array![1.0, 0.0].view()).unwrap();
        index.push(2, array![0.0, 1.0].view()).unwrap();
        index.push(1, array![0.0, -1.0].view()).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(
            index.top_k(array![0.0, 1.0].view(), 2),
            vec![(2, 1.0), (1, -1.0)]
        );
    }

    #[test]
    fn top_k_orders_by_score_then_id() {
        let mut index = VectorIndex::new(2);
        // Inserted out of id order, with ties at 0.6 and at 0.0.
        let rows = [
            (40, [0.6, 0.8]),
            (7, [1.0, 0.0]),
            (30, [0.6, -0.8]),
            (12, [0.0, 1.0]),
            (5, [0.6, 0.8]),
            (9, [-1.0, 0.0]),
            (3, [0.0, -1.0]),
        ];
        for (id, [x, y]) in rows {
            index.push(id, array![x, y].view()).unwrap();
        }
        assert_eq!(index.len(), 7);
        let query = array![1.0_f32, 0.0];
        let all = index.top_k(query.view(), 100);
        let ids: Vec<i64> = all.iter().map(|&(id, _)| id).collect();
        assert_eq!(ids, vec![7, 5, 30, 40, 3, 12, 9]);
        assert_eq!(all[0].1, 1.0);
        assert_eq!(all[6].1, -1.0);
        for k in 0..=7 {
            assert_eq!(index.top_k(query.view(), k), all[..k], "k = {k}");
        }
        // A query of the wrong dimension matches nothing.
        assert!(index.top_k(array![1.0_f32, 0.0, 0.0].view(), 3).is_empty());
        assert!(VectorIndex::new(2).top_k(query.view(), 3).is_empty());
    }

    #[test]
    fn top_k_finds_the_embedded_neighbour() {
        let embedder = HashingEmbedder::default();
        let texts = [
            "the weather in Paris",
            "Acme Corp acquired Widget Inc",
            "quarterly revenue grew by 12%",
            "Widget Inc makes sprockets",
        ];
        let rows = embedder.embed_passages(&texts).unwrap();
        let mut index = VectorIndex::new(embedder.dimension());
        for (id, row) in (100..).zip(rows.rows()) {
            index.push(id, row).unwrap();
        }
        let query = embed_one(&embedder, "who acquired widget?");
        let hits = index.top_k(query.view(), 2);
        assert_eq!(hits[0].0, 101, "{hits:?}");
        assert_eq!(hits[1].0, 103, "{hits:?}");
    }

    #[test]
    fn pushes_grow_the_rows_by_amortized_doubling() {
        // Reallocating on every push would move the buffer thousands of times; doubling
        // moves it about log2(n) times.
        let mut index = VectorIndex::new(16);
        let row = Array1::from_elem(16, 0.25_f32);
        let mut moves = 0;
        let mut last = index.values.as_ptr();
        for id in 0..4096 {
            index.push(id, row.view()).unwrap();
            if index.values.as_ptr() != last {
                moves += 1;
                last = index.values.as_ptr();
            }
        }
        assert_eq!(index.len(), 4096);
        assert!(moves <= 20, "{moves} reallocations for 4096 pushes");
    }

    /// An index of `n` rows of 16 values in 50 tight clusters (row `i` in cluster
    /// `i % 50`), under ids `0..n`.
    fn clustered_index(n: usize) -> (Vec<f32>, VectorIndex) {
        let rows = clustered(50, n.div_ceil(50));
        let mut index = VectorIndex::new(16);
        for (id, row) in (0..n as i64).zip(rows.chunks_exact(16)) {
            index.push(id, ArrayView1::from(row)).unwrap();
        }
        (rows, index)
    }

    #[test]
    fn the_index_partitions_past_the_exact_size_and_retrains_when_doubled() {
        let (rows, mut index) = clustered_index(EXACT_ROWS);
        assert_eq!(index.lists(), 0);
        let query = ArrayView1::from(&rows[..16]);
        assert_eq!(index.top_k(query, 10), index.top_k_exact(query, 10));
        index.push(-1, query).unwrap();
        let lists = index.lists();
        assert!(lists >= 64, "{lists} lists");
        // Retrained (with more lists) only once the rows have doubled.
        for (id, row) in (100_000..).zip(rows.chunks_exact(16).take(EXACT_ROWS + 1)) {
            index.push(id, ArrayView1::from(row)).unwrap();
            if index.len() < 2 * (EXACT_ROWS + 1) {
                assert_eq!(index.lists(), lists);
            }
        }
        assert!(index.lists() > lists, "{} lists", index.lists());
    }

    #[test]
    fn the_probed_path_finds_most_exact_neighbours_and_returns_exact_scores() {
        let (rows, index) = clustered_index(10_000);
        assert!(index.lists() > 0);
        let all_scores =
            |q| -> HashMap<i64, f32> { index.top_k_exact(q, 10_000).into_iter().collect() };
        let (mut found, mut wanted) = (0, 0);
        for at in (0..10_000).step_by(499) {
            let query = ArrayView1::from(&rows[at * 16..(at + 1) * 16]);
            let exact = index.top_k_exact(query, 10);
            let fast = index.top_k(query, 10);
            assert_eq!(fast.len(), 10);
            for pair in fast.windows(2) {
                assert_ne!(rank(&pair[0], &pair[1]), Ordering::Greater, "{fast:?}");
            }
            let scores = all_scores(query);
            for (id, score) in &fast {
                assert_eq!(scores[id], *score);
            }
            // Counted by score, so ties at the 10th exact score are not held against it.
            let tenth = exact[9].1;
            found += fast.iter().filter(|h| h.1 >= tenth).count().min(10);
            wanted += 10;
        }
        assert!(found * 10 >= wanted * 9, "recall@10 {found}/{wanted}");
        // A k that would score half the set takes the exact path.
        let query = ArrayView1::from(&rows[..16]);
        assert_eq!(index.top_k(query, 600), index.top_k_exact(query, 600));
    }

    #[test]
    fn replacing_a_row_moves_it_in_the_partition() {
        let (rows, mut index) = clustered_index(9_000);
        assert!(index.lists() > 0);
        // Row 7 takes row 0's values: a search near row 0 now finds id 7 with score 1.
        let query = ArrayView1::from(&rows[..16]);
        assert_ne!(
            index.top_k(query, 5).iter().find(|h| h.0 == 7).map(|h| h.1),
            Some(1.0)
        );
        index.push(7, query).unwrap();
        assert_eq!(index.len(), 9_000);
        let hits = index.top_k(query, 2);
        let ids: Vec<i64> = hits.iter().map(|h| h.0).collect();
        assert_eq!(ids, vec![0, 7], "{hits:?}");
        // And it is gone from where it was.
        let old = ArrayView1::from(&rows[7 * 16..8 * 16]);
        assert!(index.top_k(old, 50).iter().all(|h| h.0 != 7));
    }

    #[test]
    fn the_probed_path_orders_ties_by_id_and_checks_the_dimension() {
        let (_, mut index) = clustered_index(9_000);
        let tie = array![
            0.6_f32, 0.8, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        ];
        for id in [50_050, 50_008, 50_031, 50_002, 50_077] {
            index.push(id, tie.view()).unwrap();
        }
        let hits = index.top_k(tie.view(), 5);
        let ids: Vec<i64> = hits.iter().map(|h| h.0).collect();
        assert_eq!(ids, vec![50_002, 50_008, 50_031, 50_050, 50_077]);
        assert!(index.top_k(array![1.0_f32, 0.0].view(), 5).is_empty());
        assert!(index.top_k_probed(tie.view(), 0, 100).is_empty());
        assert!(
            VectorIndex::new(16)
                .top_k_probed(tie.view(), 3, 10)
                .is_empty()
        );
    }
}
