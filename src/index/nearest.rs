//! Nearest-neighbour search over the loaded vectors: exact for small sets, a 1-bit sketch
//! scan with exact re-scoring for large ones.
//!
//! Scoring every stored f32 row reads `4·d` bytes per row: at 100,000 rows of 384 values
//! that is 150 MB per query, which memory bandwidth alone makes many milliseconds. So
//! each row also keeps a sketch: the signs of the row after a fixed random rotation (one
//! bit per coordinate, `d/8` bytes, 32 times less to read) and a scale. A large search
//! scores every sketch against the rotated, unquantized query through per-byte lookup
//! tables, keeps the best `RESCORE_FACTOR·k` candidates, and re-scores only those
//! exactly. Returned scores are always exact dot products; small sets (or a `k` close
//! to the set's size) are scored exactly throughout. `docs/benchmarks.md` ("Vector
//! search") has the measurements and the recall against exact search.

use std::cmp::Ordering;
use std::collections::HashMap;

use ndarray::ArrayView1;

use crate::error::{Error, Result};

/// Up to this many rows every search is exact: scoring them all costs about as much as
/// the sketch scan would, and recall is 1.
pub const EXACT_ROWS: usize = 8_192;

/// A sketched search re-scores exactly this many candidates per wanted hit...
pub const RESCORE_FACTOR: usize = 10;

/// ...and at least this many, so a small `k` still gets a deep enough candidate list.
pub const MIN_RESCORED: usize = 500;

/// Stored vectors with their sketches, for nearest-neighbour search by dot product.
///
/// Exported (hidden) for `benches/vectors.rs` only; not part of cairn's stable API.
#[derive(Debug, Clone)]
pub struct VectorIndex {
    dimension: usize,
    /// Row-major, `dimension` values per row; `Vec` growth is amortized doubling.
    values: Vec<f32>,
    /// A fixed random rotation applied before sketching: it spreads every row over all
    /// coordinates, so sparse rows (a hashing embedder's are mostly zeros) still get a
    /// sign bit that says something in every position. Dot products are unchanged.
    rotation: Rotation,
    /// `code_len()` bytes per row: bit `b` of byte `j` is set when coordinate `8j + b`
    /// of the rotated row is positive.
    codes: Vec<u8>,
    /// Per row, the scale `a` that makes `a·s` (s = the row's signs as ±1) the least-squares
    /// fit of the row: mean |value|. It puts rows of different sparsity on one scale.
    scales: Vec<f32>,
    /// `ids[i]` names row `i`.
    ids: Vec<i64>,
    /// The row of each id, so storing an id again replaces its row.
    rows: HashMap<i64, usize>,
}

impl VectorIndex {
    /// An empty index of vectors of `dimension` values.
    pub fn new(dimension: usize) -> Self {
        VectorIndex {
            dimension,
            rotation: Rotation::new(dimension),
            values: Vec::new(),
            codes: Vec::new(),
            scales: Vec::new(),
            ids: Vec::new(),
            rows: HashMap::new(),
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

    fn code_len(&self) -> usize {
        self.rotation.len() / 8
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
        let (code, scale) = sketch(&self.rotation.apply(row.iter().copied()));
        let d = self.dimension;
        let c = self.code_len();
        if let Some(&at) = self.rows.get(&id) {
            for (slot, value) in self.values[at * d..(at + 1) * d].iter_mut().zip(row) {
                *slot = *value;
            }
            self.codes[at * c..(at + 1) * c].copy_from_slice(&code);
            self.scales[at] = scale;
            return Ok(());
        }
        self.values.extend(row.iter());
        self.codes.extend_from_slice(&code);
        self.scales.push(scale);
        self.rows.insert(id, self.ids.len());
        self.ids.push(id);
        Ok(())
    }

    fn row(&self, at: usize) -> &[f32] {
        &self.values[at * self.dimension..(at + 1) * self.dimension]
    }

    /// The (at most) `k` stored vectors with the highest dot product with `query`, best
    /// first; equal scores are ordered by ascending id so results never depend on
    /// insertion order. A query of another dimension matches nothing.
    ///
    /// Exact up to [`EXACT_ROWS`] rows, or when the candidates to re-score would be half
    /// the set anyway; otherwise [`top_k_sketched`](Self::top_k_sketched).
    pub fn top_k(&self, query: ArrayView1<'_, f32>, k: usize) -> Vec<(i64, f32)> {
        let candidates = k.saturating_mul(RESCORE_FACTOR).max(MIN_RESCORED);
        if self.len() <= EXACT_ROWS || candidates >= self.len() / 2 {
            self.top_k_exact(query, k)
        } else {
            self.top_k_sketched(query, k, candidates)
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

    /// [`top_k`](Self::top_k) through the sketches: every row's sketch is scored against
    /// `query`, and the best `candidates` rows (at least `k`) are re-scored exactly. The
    /// scores returned are exact; only which rows are found is approximate.
    pub fn top_k_sketched(
        &self,
        query: ArrayView1<'_, f32>,
        k: usize,
        candidates: usize,
    ) -> Vec<(i64, f32)> {
        let Some(query) = self.usable(query, k) else {
            return Vec::new();
        };
        let tables = Tables::new(&self.rotation.apply(query.iter().copied()), self.code_len());
        let wanted = candidates.max(k).min(self.len());
        let mut pool = Pool::new(wanted);
        for (at, (code, &scale)) in self
            .codes
            .chunks_exact(self.code_len())
            .zip(&self.scales)
            .enumerate()
        {
            pool.offer(at, scale * tables.score(code));
        }
        let hits = pool
            .into_rows()
            .into_iter()
            .map(|at| (self.ids[at], dot(self.row(at), &query)))
            .collect();
        best(hits, k)
    }

    /// `query` as a contiguous vector, or `None` when nothing can match.
    fn usable(&self, query: ArrayView1<'_, f32>, k: usize) -> Option<Vec<f32>> {
        (k > 0 && !self.is_empty() && query.len() == self.dimension)
            .then(|| query.iter().copied().collect())
    }
}

/// A rotated row's sign bits, packed 8 to a byte, and its scale (mean |value|).
fn sketch(rotated: &[f32]) -> (Vec<u8>, f32) {
    let mut code = vec![0_u8; rotated.len().div_ceil(8)];
    let mut magnitude = 0.0_f64;
    for (i, &value) in rotated.iter().enumerate() {
        if value > 0.0 {
            code[i / 8] |= 1 << (i % 8);
        }
        magnitude += f64::from(value.abs());
    }
    let scale = if rotated.is_empty() {
        0.0
    } else {
        (magnitude / rotated.len() as f64) as f32
    };
    (code, scale)
}

/// Coordinates per block of the rotation's Walsh-Hadamard transforms.
const BLOCK: usize = 64;

/// A fast pseudo-random orthogonal transform of vectors zero-padded to whole blocks:
/// three rounds of random signs, a normalized Walsh-Hadamard transform of each block, and
/// (between rounds) a transpose that deals each block's coordinates out to every block.
/// Every step is orthogonal, so the whole is.
/// About `3·d·(1 + log2 64)` additions per vector instead of the `d²` of a dense random
/// rotation. The signs come from a fixed seed: sketches are rebuilt on every load, so
/// only one process's rows and queries need to agree.
#[derive(Debug, Clone)]
struct Rotation {
    /// Per round, one sign per padded coordinate.
    signs: Vec<Vec<f32>>,
    len: usize,
}

impl Rotation {
    fn new(dimension: usize) -> Self {
        let len = dimension.max(1).next_multiple_of(BLOCK);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let signs = (0..3)
            .map(|_| {
                (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        if state >> 63 == 0 { 1.0 } else { -1.0 }
                    })
                    .collect()
            })
            .collect();
        Rotation { signs, len }
    }

    /// The padded length, a multiple of 64 (so of 8: whole sketch bytes).
    fn len(&self) -> usize {
        self.len
    }

    fn apply(&self, values: impl Iterator<Item = f32>) -> Vec<f32> {
        let mut x = vec![0.0_f32; self.len];
        for (slot, value) in x.iter_mut().zip(values) {
            *slot = value;
        }
        let blocks = self.len / BLOCK;
        for (round, signs) in self.signs.iter().enumerate() {
            if round > 0 && blocks > 1 {
                // The blocks × 64 matrix transposed: each new block holds a run of
                // coordinates from every old block.
                let mut dealt = vec![0.0_f32; self.len];
                for (at, &value) in x.iter().enumerate() {
                    dealt[(at % BLOCK) * blocks + at / BLOCK] = value;
                }
                x = dealt;
            }
            for (value, sign) in x.iter_mut().zip(signs) {
                *value *= sign;
            }
            for block in x.chunks_exact_mut(BLOCK) {
                hadamard(block);
            }
        }
        x
    }
}

/// In-place normalized Walsh-Hadamard transform of a block of 64 (orthogonal).
fn hadamard(block: &mut [f32]) {
    let mut h = 1;
    while h < block.len() {
        for pair in block.chunks_exact_mut(2 * h) {
            let (low, high) = pair.split_at_mut(h);
            for (a, b) in low.iter_mut().zip(high) {
                let (x, y) = (*a, *b);
                *a = x + y;
                *b = x - y;
            }
        }
        h *= 2;
    }
    let norm = 1.0 / (block.len() as f32).sqrt();
    for value in block {
        *value *= norm;
    }
}

/// Per-query lookup tables: `tables[j][byte]` is the dot product of the rotated query's
/// coordinates `8j..8j+8` with the ±1 signs `byte` encodes, so a sketch scores in `d/8`
/// lookups. Entries are stored as `i16` in units of `unit`: 24 KiB for 384 dimensions,
/// which stays in a core's L1 cache (the f32 tables did not), and integer sums do not
/// wait on floating-point latency. The rounding is far below the sketch's own error.
struct Tables {
    tables: Vec<[i16; 256]>,
    unit: f32,
}

impl Tables {
    fn new(rotated: &[f32], code_len: usize) -> Self {
        let mut exact = vec![[0.0_f32; 256]; code_len];
        for (table, values) in exact.iter_mut().zip(rotated.chunks(8)) {
            // All signs negative, then each set bit flips one value from -q to +q.
            table[0] = -values.iter().sum::<f32>();
            for byte in 1..256_usize {
                let low = byte.trailing_zeros() as usize;
                let flip = values.get(low).map_or(0.0, |q| 2.0 * q);
                table[byte] = table[byte & (byte - 1)] + flip;
            }
        }
        let largest = exact
            .iter()
            .flat_map(|t| t.iter())
            .fold(0.0_f32, |m, v| m.max(v.abs()));
        let unit = if largest > 0.0 && largest.is_finite() {
            largest / f32::from(i16::MAX)
        } else {
            1.0
        };
        let tables = exact
            .iter()
            .map(|t| t.map(|v| (v / unit).round() as i16))
            .collect();
        Tables { tables, unit }
    }

    fn score(&self, code: &[u8]) -> f32 {
        // Four running sums, so consecutive lookups do not wait on one another's adds.
        let mut sums = [0_i32; 4];
        let (bytes, tables) = (code.chunks_exact(4), self.tables.chunks_exact(4));
        let rest = bytes.remainder().iter().zip(tables.remainder());
        for (bytes, tables) in bytes.zip(tables) {
            for ((sum, table), &byte) in sums.iter_mut().zip(tables).zip(bytes) {
                *sum += i32::from(table[usize::from(byte)]);
            }
        }
        for (&byte, table) in rest {
            sums[0] += i32::from(table[usize::from(byte)]);
        }
        sums.iter().sum::<i32>() as f32 * self.unit
    }
}

/// The rows of the best `wanted` approximate scores seen, kept in `O(n)` overall: offers
/// collect in a buffer of twice that size, which is cut back to the best `wanted`
/// whenever it fills, raising the bar later offers must pass.
struct Pool {
    wanted: usize,
    bar: f32,
    kept: Vec<(usize, f32)>,
}

impl Pool {
    fn new(wanted: usize) -> Self {
        Pool {
            wanted,
            bar: f32::NEG_INFINITY,
            kept: Vec::with_capacity(wanted.saturating_mul(2)),
        }
    }

    fn offer(&mut self, at: usize, score: f32) {
        if score < self.bar {
            return;
        }
        self.kept.push((at, score));
        if self.kept.len() >= self.wanted.saturating_mul(2) {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.wanted == 0 || self.kept.len() <= self.wanted {
            return;
        }
        // Higher score first, then the earlier row, so the cut is reproducible.
        let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        self.kept.select_nth_unstable_by(self.wanted - 1, order);
        self.kept.truncate(self.wanted);
        self.bar = self.kept[self.wanted - 1].1;
    }

    fn into_rows(mut self) -> Vec<usize> {
        self.cut();
        self.kept.into_iter().map(|(at, _)| at).collect()
    }
}

/// Dot product in sixteen independent lanes, which the compiler vectorizes.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0_f32; 16];
    let (a_blocks, a_rest) = a.as_chunks::<16>();
    let (b_blocks, b_rest) = b.as_chunks::<16>();
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for ((lane, a), b) in lanes.iter_mut().zip(x).zip(y) {
            *lane += a * b;
        }
    }
    let tail: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
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
    fn the_rotation_keeps_dot_products_and_spreads_sparse_rows() {
        for dimension in [3, 64, 100, 384] {
            let rotation = Rotation::new(dimension);
            assert_eq!(rotation.len() % 64, 0);
            assert!(rotation.len() >= dimension);
            let a: Vec<f32> = (0..dimension)
                .map(|i| ((i * 7 % 11) as f32) - 5.0)
                .collect();
            let b: Vec<f32> = (0..dimension).map(|i| ((i * 3 % 5) as f32) - 2.0).collect();
            let (ra, rb) = (
                rotation.apply(a.iter().copied()),
                rotation.apply(b.iter().copied()),
            );
            let want = dot(&a, &b);
            assert!(
                (dot(&ra, &rb) - want).abs() <= 1e-3 * want.abs().max(1.0),
                "d = {dimension}"
            );
            assert!((dot(&ra, &ra) - dot(&a, &a)).abs() <= 1e-3 * dot(&a, &a));
        }
        // One non-zero value ends up spread over (nearly) every coordinate.
        let rotation = Rotation::new(384);
        let mut one = vec![0.0_f32; 384];
        one[5] = 1.0;
        let spread = rotation.apply(one.into_iter());
        let nonzero = spread.iter().filter(|v| v.abs() > 1e-4).count();
        assert!(nonzero >= 350, "{nonzero} of 384: {spread:?}");
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
        assert_eq!(index.codes.len(), 4096 * index.code_len());
        assert!(moves <= 20, "{moves} reallocations for 4096 pushes");
    }

    /// `n` hashing-embedder rows of word salad over a small vocabulary (so rows share
    /// words and have real neighbours), under ids `0..n`.
    fn salad(n: usize, dimension: usize) -> (HashingEmbedder, VectorIndex) {
        let words = [
            "acme", "widget", "sprocket", "paris", "revenue", "quarter", "merger", "board",
            "alice", "bob", "contract", "supplier", "invoice", "shipping", "delay", "launch",
            "product", "market", "share", "price", "customer", "support", "ticket", "bug",
        ];
        let embedder = HashingEmbedder::new(dimension).unwrap();
        let mut index = VectorIndex::new(dimension);
        let mut state = 0x9e37_79b9_u64;
        for id in 0..n {
            let text: Vec<&str> = (0..6)
                .map(|_| {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1);
                    words[(state >> 33) as usize % words.len()]
                })
                .collect();
            let row = embed_one(&embedder, &text.join(" "));
            index.push(id as i64, row.view()).unwrap();
        }
        (embedder, index)
    }

    #[test]
    fn the_sketched_path_is_exact_when_it_rescores_everything() {
        let (embedder, index) = salad(300, 64);
        for query in ["acme widget merger", "bob ticket bug", "price"] {
            let query = embed_one(&embedder, query);
            for k in [1, 10, 50, 300] {
                assert_eq!(
                    index.top_k_sketched(query.view(), k, 300),
                    index.top_k_exact(query.view(), k),
                    "k = {k}"
                );
            }
        }
        // Small sets take the exact path whatever the k.
        assert!(index.len() <= EXACT_ROWS);
        let query = embed_one(&embedder, "alice contract");
        assert_eq!(
            index.top_k(query.view(), 5),
            index.top_k_exact(query.view(), 5)
        );
    }

    #[test]
    fn the_sketched_path_finds_most_exact_neighbours_and_returns_exact_scores() {
        let (embedder, index) = salad(3000, 128);
        let (mut found, mut wanted) = (0, 0);
        for query in [
            "acme widget",
            "revenue quarter merger",
            "customer support ticket",
        ] {
            let query = embed_one(&embedder, query);
            let exact = index.top_k_exact(query.view(), 10);
            let fast = index.top_k_sketched(query.view(), 10, 300);
            assert_eq!(fast.len(), 10);
            // Whatever it found carries its exact score, in rank order.
            let all: HashMap<i64, f32> =
                index.top_k_exact(query.view(), 3000).into_iter().collect();
            for pair in fast.windows(2) {
                assert_ne!(rank(&pair[0], &pair[1]), Ordering::Greater, "{fast:?}");
            }
            for (id, score) in &fast {
                assert_eq!(all[id], *score);
            }
            // Counted by score, so ties at the 10th exact score are not held against it.
            let tenth = exact[9].1;
            found += fast.iter().filter(|h| h.1 >= tenth).count().min(10);
            wanted += 10;
        }
        assert!(found * 10 >= wanted * 9, "recall@10 {found}/{wanted}");
    }

    #[test]
    fn replacing_a_row_replaces_its_sketch() {
        let (embedder, mut index) = salad(2000, 64);
        let text = "zebra quokka axolotl";
        let query = embed_one(&embedder, text);
        let before = index.top_k_sketched(query.view(), 1, 20);
        assert_ne!(before[0].1, 1.0);
        index.push(1234, query.view()).unwrap();
        assert_eq!(index.len(), 2000);
        let after = index.top_k_sketched(query.view(), 1, 20);
        assert_eq!(after[0].0, 1234);
        assert!((after[0].1 - 1.0).abs() < 1e-5, "{after:?}");
        // And storing something else under it again takes it away.
        let other = embed_one(&embedder, "acme widget");
        index.push(1234, other.view()).unwrap();
        let again = index.top_k_sketched(query.view(), 1, 20);
        assert!(again[0].1 < 0.99, "{again:?}");
    }

    #[test]
    fn the_sketched_path_orders_ties_by_id_and_checks_the_dimension() {
        let mut index = VectorIndex::new(3);
        // The same vector under ids inserted out of order, among others.
        for id in [50, 8, 31, 2, 77] {
            index.push(id, array![0.6, 0.8, 0.0].view()).unwrap();
        }
        for id in 100..200 {
            let x = id as f32 / 200.0;
            index.push(id, array![-x, 0.1, 1.0 - x].view()).unwrap();
        }
        let hits = index.top_k_sketched(array![0.6_f32, 0.8, 0.0].view(), 5, 10);
        let ids: Vec<i64> = hits.iter().map(|h| h.0).collect();
        assert_eq!(ids, vec![2, 8, 31, 50, 77]);
        assert!(
            index
                .top_k_sketched(array![1.0_f32, 0.0].view(), 5, 10)
                .is_empty()
        );
        assert!(
            index
                .top_k_sketched(array![1.0_f32, 0.0, 0.0].view(), 0, 10)
                .is_empty()
        );
        assert!(
            VectorIndex::new(3)
                .top_k_sketched(array![1.0_f32, 0.0, 0.0].view(), 3, 10)
                .is_empty()
        );
    }
}
