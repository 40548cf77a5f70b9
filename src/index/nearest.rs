//! Exact nearest-neighbour search over the loaded vectors.

use std::cmp::Ordering;
use std::collections::HashMap;

use ndarray::{Array2, ArrayView1};

use crate::error::{Error, Result};

/// Stored vectors in one matrix, for exact (brute-force) nearest-neighbour search.
///
/// One matrix-vector product scores every row, which for the tens of thousands of
/// vectors an agent memory holds beats any approximate index on both speed and recall.
#[derive(Debug, Clone)]
pub(crate) struct VectorIndex {
    /// Row-major, one row per stored vector. Growth is `push_row`, which appends in
    /// place: the array starts with zero rows, so rows are its outermost axis and
    /// ndarray grows the backing `Vec` with `Vec::reserve`, i.e. by amortized doubling.
    /// n pushes cost O(n·d) copies, not the O(n²·d) of rebuilding the matrix each time,
    /// and the matrix is always ready for `dot`, with no lazy rebuild to invalidate.
    matrix: Array2<f32>,
    /// `ids[i]` names row `i` of `matrix`.
    ids: Vec<i64>,
    /// The row of each id, so storing an id again replaces its row.
    rows: HashMap<i64, usize>,
}

impl VectorIndex {
    /// An empty index of vectors of `dimension` values.
    pub(crate) fn new(dimension: usize) -> Self {
        VectorIndex {
            matrix: Array2::zeros((0, dimension)),
            ids: Vec::new(),
            rows: HashMap::new(),
        }
    }

    /// The length of every stored vector.
    pub(crate) fn dimension(&self) -> usize {
        self.matrix.ncols()
    }

    /// The number of stored vectors.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// Stores `row` under `id`, replacing the row stored under `id` before. Refuses a row
    /// of another dimension, and non-finite values, whose NaN scores would make the
    /// ranking meaningless.
    pub(crate) fn push(&mut self, id: i64, row: ArrayView1<'_, f32>) -> Result<()> {
        if row.len() != self.dimension() {
            return Err(Error::invalid_input(
                "vector",
                format!("expected {} values, found {}", self.dimension(), row.len()),
            ));
        }
        if let Some(bad) = row.iter().find(|value| !value.is_finite()) {
            return Err(Error::invalid_input(
                "vector",
                format!("it contains the non-finite value {bad}"),
            ));
        }
        if let Some(&at) = self.rows.get(&id) {
            self.matrix.row_mut(at).assign(&row);
            return Ok(());
        }
        self.matrix
            .push_row(row)
            .map_err(|e| Error::invalid_input("vector", e.to_string()))?;
        self.rows.insert(id, self.ids.len());
        self.ids.push(id);
        Ok(())
    }

    /// The (at most) `k` stored vectors with the highest dot product with `query`, best
    /// first; equal scores are ordered by ascending id so results never depend on
    /// insertion order. A query of another dimension matches nothing.
    pub(crate) fn top_k(&self, query: ArrayView1<'_, f32>, k: usize) -> Vec<(i64, f32)> {
        if k == 0 || self.ids.is_empty() || query.len() != self.dimension() {
            return Vec::new();
        }
        let scores = self.matrix.dot(&query);
        let mut hits: Vec<(i64, f32)> = self.ids.iter().copied().zip(scores).collect();
        // Select then sort: O(n + k log k) instead of sorting all n scores.
        if k < hits.len() {
            hits.select_nth_unstable_by(k - 1, rank);
            hits.truncate(k);
        }
        hits.sort_unstable_by(rank);
        hits
    }
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
        // A query of the wrong dimension matches nothing rather than panicking in `dot`.
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
    fn pushes_grow_the_matrix_by_amortized_doubling() {
        // Reallocating on every push would move the buffer thousands of times; doubling
        // moves it about log2(n) times.
        let mut index = VectorIndex::new(16);
        let row = Array1::from_elem(16, 0.25_f32);
        let mut moves = 0;
        let mut last = index.matrix.as_ptr();
        for id in 0..4096 {
            index.push(id, row.view()).unwrap();
            if index.matrix.as_ptr() != last {
                moves += 1;
                last = index.matrix.as_ptr();
            }
        }
        assert_eq!(index.len(), 4096);
        assert!(index.matrix.is_standard_layout());
        assert!(moves <= 20, "{moves} reallocations for 4096 pushes");
    }
}
