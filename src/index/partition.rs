//! An inverted-file partition of the stored vectors, so a large nearest-neighbour search
//! scores a few lists of rows instead of all of them.
//!
//! Rows are clustered in two levels by spherical k-means: `C` coarse centroids, and under
//! each `F` fine ones, `C·F` lists in all. Two levels make the build affordable: putting
//! a row in its list costs `C + F` dot products instead of `C·F`, so at 100,000 rows of
//! 384 values the whole build is about 3·10⁹ multiply-adds (one second on one core)
//! rather than the ten a flat partition of as many lists would cost. A search scores the
//! coarse centroids, then the fine centroids under the best coarse ones, and scans the
//! best fine lists until it has enough rows; [`VectorIndex`](super::nearest::VectorIndex)
//! re-scores the best of those exactly.
//!
//! The scan reads a copy of each row quantized to `i8` (with a per-row scale), stored
//! contiguously per list: a quarter of the f32 row's bytes, read in order rather than
//! scattered over the whole set, so scanning a list costs its bandwidth, not a cache miss
//! per row. The quantization error (under 1 % of a score) only decides which rows are
//! re-scored, never a returned score.
//!
//! Everything here is deterministic (strided samples, no random seed), so the same rows
//! give the same partition in every process.

use super::nearest::dot;

/// Lloyd iterations of each k-means.
const ITERATIONS: usize = 6;

/// Rows sampled per list for training: enough for stable centroids, a fraction of the
/// rows of a large set.
const SAMPLE_PER_LIST: usize = 32;

/// Coarse centroids whose fine lists a search considers, as a fraction `1/COARSE_SHARE`
/// of all coarse centroids (at least two): a row's true neighbours often sit under the
/// second or third best coarse centroid, rarely under the worst half.
const COARSE_SHARE: usize = 3;

/// The partition of one [`VectorIndex`](super::nearest::VectorIndex)'s rows.
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    dimension: usize,
    /// `coarse_count` rows of `dimension` values.
    coarse: Vec<f32>,
    /// `coarse_count · fanout` rows; fine list `l` lies under coarse centroid `l / fanout`.
    fine: Vec<f32>,
    fanout: usize,
    /// Per fine list, the rows (positions in the index) it holds.
    members: Vec<Vec<u32>>,
    /// Per fine list, its members' rows quantized to `i8`, `dimension` values each, in
    /// `members` order.
    codes: Vec<Vec<i8>>,
    /// Per fine list, each member's quantization scale (value = scale · code).
    scales: Vec<Vec<f32>>,
    /// Per row position, its fine list.
    list_of: Vec<u32>,
    /// How many rows the partition was trained on: the index retrains when it has grown
    /// to twice that, so training costs amortized O(1) per row.
    trained_on: usize,
}

impl Partition {
    /// Trains a partition on `rows` (row-major, `dimension` values each) and files every
    /// row in its list. `rows` must hold at least one row.
    pub(crate) fn train(rows: &[f32], dimension: usize) -> Self {
        let n = rows.len() / dimension.max(1);
        let side = side_for(n);
        let sample = strided(n, SAMPLE_PER_LIST * side * side);
        let points: Vec<&[f32]> = sample
            .iter()
            .map(|&at| &rows[at * dimension..(at + 1) * dimension])
            .collect();
        let coarse = kmeans(&points, side, dimension);
        let mut under: Vec<Vec<&[f32]>> = vec![Vec::new(); side];
        for point in &points {
            under[nearest(&coarse, dimension, point)].push(point);
        }
        let mut fine = Vec::with_capacity(side * side * dimension);
        for (c, points) in under.iter().enumerate() {
            let centroids = if points.is_empty() {
                // A coarse centroid nothing was assigned to keeps itself as its fine ones.
                coarse[c * dimension..(c + 1) * dimension].repeat(side)
            } else {
                kmeans(points, side, dimension)
            };
            fine.extend_from_slice(&centroids);
        }
        let mut partition = Partition {
            dimension,
            coarse,
            fine,
            fanout: side,
            members: vec![Vec::new(); side * side],
            codes: vec![Vec::new(); side * side],
            scales: vec![Vec::new(); side * side],
            list_of: Vec::with_capacity(n),
            trained_on: n,
        };
        for row in rows.chunks_exact(dimension) {
            let at = partition.list_of.len();
            partition.file(at, row);
        }
        partition
    }

    /// Whether the index has grown enough since training that a new partition pays.
    pub(crate) fn stale(&self, rows: usize) -> bool {
        rows >= self.trained_on.saturating_mul(2)
    }

    /// Files row `at` (a new position, or an existing one whose values changed) in the
    /// list of its nearest fine centroid, with its quantized copy.
    pub(crate) fn file(&mut self, at: usize, row: &[f32]) {
        let list = self.list_for(row);
        let Ok(position) = u32::try_from(at) else {
            return;
        };
        if at < self.list_of.len() {
            self.unfile(at, position);
            self.list_of[at] = list as u32;
        } else {
            self.list_of.push(list as u32);
        }
        let (code, scale) = quantize(row);
        self.members[list].push(position);
        self.codes[list].extend_from_slice(&code);
        self.scales[list].push(scale);
    }

    /// Takes row `at` out of its list (the list's last member takes its place).
    fn unfile(&mut self, at: usize, position: u32) {
        let list = self.list_of[at] as usize;
        let d = self.dimension;
        let Some(i) = self.members[list].iter().position(|&r| r == position) else {
            return;
        };
        let last = self.members[list].len() - 1;
        self.members[list].swap_remove(i);
        self.scales[list].swap_remove(i);
        let codes = &mut self.codes[list];
        codes.copy_within(last * d..(last + 1) * d, i * d);
        codes.truncate(last * d);
    }

    /// The fine list nearest `row`: the best fine centroid under the best coarse one.
    fn list_for(&self, row: &[f32]) -> usize {
        let c = nearest(&self.coarse, self.dimension, row);
        let d = self.dimension;
        let under = &self.fine[c * self.fanout * d..(c + 1) * self.fanout * d];
        c * self.fanout + nearest(under, d, row)
    }

    /// The `keep` rows (positions) with the best approximate scores among the members of
    /// the fine lists nearest `query`, scanned best list first until at least `scan` rows
    /// are (or every candidate list is).
    pub(crate) fn probe(&self, query: &[f32], scan: usize, keep: usize) -> Vec<u32> {
        let (code, query_scale) = quantize(query);
        let mut scored: Vec<(u32, f32)> = Vec::with_capacity(scan.min(self.list_of.len()));
        let mut dots: Vec<i32> = Vec::new();
        for list in self.nearest_lists(query) {
            if scored.len() >= scan {
                break;
            }
            dots.clear();
            // One call per list: the kernel runs compiled for the CPU's vector
            // instructions (this crate is built for baseline x86-64).
            cairn_kernels::dot_i8_rows(&self.codes[list], &code, &mut dots);
            for ((&at, &dot), &scale) in
                self.members[list].iter().zip(&dots).zip(&self.scales[list])
            {
                scored.push((at, scale * query_scale * dot as f32));
            }
        }
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if keep > 0 && keep < scored.len() {
            scored.select_nth_unstable_by(keep - 1, order);
            scored.truncate(keep);
        }
        scored.into_iter().map(|(at, _)| at).collect()
    }

    /// The fine lists under the best coarse centroids for `query`, best first.
    fn nearest_lists(&self, query: &[f32]) -> Vec<usize> {
        let d = self.dimension;
        let coarse_count = self.coarse.len() / d.max(1);
        let mut coarse: Vec<(usize, f32)> = self
            .coarse
            .chunks_exact(d)
            .map(|c| dot(c, query))
            .enumerate()
            .collect();
        coarse.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        coarse.truncate((coarse_count / COARSE_SHARE).max(2));
        let mut lists: Vec<(usize, f32)> = Vec::with_capacity(coarse.len() * self.fanout);
        for &(c, _) in &coarse {
            for f in 0..self.fanout {
                let list = c * self.fanout + f;
                lists.push((list, dot(&self.fine[list * d..(list + 1) * d], query)));
            }
        }
        lists.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        lists.into_iter().map(|(list, _)| list).collect()
    }

    /// The number of fine lists.
    pub(crate) fn lists(&self) -> usize {
        self.members.len()
    }

    /// The number of rows in the largest list: how unbalanced the partition is.
    pub(crate) fn largest_list(&self) -> usize {
        self.members.iter().map(Vec::len).max().unwrap_or(0)
    }
}

/// `row` as `i8` codes and the scale that maps them back (value ≈ scale · code): the
/// largest magnitude becomes ±127.
fn quantize(row: &[f32]) -> (Vec<i8>, f32) {
    let largest = row.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
    if largest <= 0.0 || !largest.is_finite() {
        return (vec![0; row.len()], 0.0);
    }
    let scale = largest / 127.0;
    let code = row
        .iter()
        .map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    (code, scale)
}

/// Centroids per level for `n` rows: about `n^(1/4)`, so the `n^(1/2)` lists hold about
/// `n^(1/2)` rows each (316 of 316 at 100,000 rows).
fn side_for(n: usize) -> usize {
    ((n as f64).sqrt().sqrt().round() as usize).clamp(2, 64)
}

/// `wanted` row positions spread evenly over `0..n` (all of them if `n <= wanted`).
fn strided(n: usize, wanted: usize) -> Vec<usize> {
    if n <= wanted {
        return (0..n).collect();
    }
    (0..wanted).map(|i| i * n / wanted).collect()
}

/// The position of the centroid (rows of `centroids`) with the highest dot product with
/// `row`; the first on ties.
fn nearest(centroids: &[f32], dimension: usize, row: &[f32]) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, centroid) in centroids.chunks_exact(dimension).enumerate() {
        let score = dot(centroid, row);
        if score > best.1 {
            best = (i, score);
        }
    }
    best.0
}

/// `k` unit centroids of `points` by spherical k-means (dot product, normalized means),
/// started from `k` points spread through the list. A centroid that loses all its points
/// keeps its place.
fn kmeans(points: &[&[f32]], k: usize, dimension: usize) -> Vec<f32> {
    let mut centroids: Vec<f32> = strided(points.len(), k)
        .into_iter()
        .flat_map(|at| points[at].iter().copied())
        .collect();
    // Fewer points than centroids: repeat the last so there are always k.
    while centroids.len() < k * dimension {
        let last = centroids[centroids.len() - dimension..].to_vec();
        centroids.extend_from_slice(&last);
    }
    for _ in 0..ITERATIONS {
        let mut sums = vec![0.0_f32; k * dimension];
        for point in points {
            let c = nearest(&centroids, dimension, point);
            for (sum, value) in sums[c * dimension..(c + 1) * dimension]
                .iter_mut()
                .zip(*point)
            {
                *sum += value;
            }
        }
        for (centroid, sum) in centroids
            .chunks_exact_mut(dimension)
            .zip(sums.chunks_exact(dimension))
        {
            let norm = dot(sum, sum).sqrt();
            if norm > 0.0 && norm.is_finite() {
                for (slot, value) in centroid.iter_mut().zip(sum) {
                    *slot = value / norm;
                }
            }
        }
    }
    centroids
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `clusters` random unit directions and `per` noisy unit rows around each, in 16
    /// dimensions, from a fixed xorshift stream.
    pub(crate) fn clustered(clusters: usize, per: usize) -> Vec<f32> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f32 / (1u64 << 53) as f32 - 0.5
        };
        let unit = |v: Vec<f32>| {
            let n = dot(&v, &v).sqrt();
            v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
        };
        let centers: Vec<Vec<f32>> = (0..clusters)
            .map(|_| unit((0..16).map(|_| next()).collect()))
            .collect();
        let mut rows = Vec::new();
        for _ in 0..per {
            for center in &centers {
                rows.extend(unit(center.iter().map(|c| c + 0.1 * next()).collect()));
            }
        }
        rows
    }

    #[test]
    fn every_row_is_filed_once_in_its_nearest_list() {
        let rows = clustered(20, 50);
        let partition = Partition::train(&rows, 16);
        assert_eq!(partition.lists(), side_for(1000) * side_for(1000));
        let mut seen: Vec<u32> = partition.members.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..1000).collect::<Vec<u32>>());
        for (at, row) in rows.chunks_exact(16).enumerate() {
            let list = partition.list_of[at] as usize;
            assert_eq!(list, partition.list_for(row));
            assert!(partition.members[list].contains(&(at as u32)));
        }
    }

    #[test]
    fn a_probe_reaches_the_querys_cluster_first() {
        let rows = clustered(20, 50);
        let partition = Partition::train(&rows, 16);
        // Row 3's cluster-mates are rows 3, 23, 43, ...: a probe for 50 rows near row 3
        // should hold most of them.
        let query = &rows[3 * 16..4 * 16];
        let probed = partition.probe(query, 50, usize::MAX);
        assert!(probed.len() >= 50);
        let mates = probed.iter().filter(|&&at| at % 20 == 3).count();
        assert!(mates >= 40, "{mates} of 50 cluster-mates in {probed:?}");
        // Asking for every row returns every row of the candidate lists, without repeats.
        let mut all = partition.probe(query, usize::MAX, usize::MAX);
        let len = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), len);
    }

    #[test]
    fn refiling_a_changed_row_moves_it() {
        let rows = clustered(20, 50);
        let mut partition = Partition::train(&rows, 16);
        let before = partition.list_of[0] as usize;
        // Row 0 takes the values of row 1 (another cluster).
        partition.file(0, &rows[16..32]);
        let after = partition.list_of[0] as usize;
        assert_eq!(after, partition.list_of[1] as usize);
        assert_ne!(before, after);
        assert!(!partition.members[before].contains(&0));
        // The quantized copies moved with it: each list holds one code per member.
        for (list, members) in partition.members.iter().enumerate() {
            assert_eq!(partition.codes[list].len(), members.len() * 16);
            assert_eq!(partition.scales[list].len(), members.len());
        }
        let probed = partition.probe(&rows[16..32], 10, 2);
        assert!(probed.contains(&0) && probed.contains(&1), "{probed:?}");
        assert_eq!(
            partition.members[after].iter().filter(|&&r| r == 0).count(),
            1
        );
        // A new position is appended.
        partition.file(1000, &rows[..16]);
        assert_eq!(partition.list_of.len(), 1001);
        assert!(!partition.stale(1001) && partition.stale(2000));
    }

    #[test]
    fn quantized_scores_stay_within_a_percent() {
        let rows = clustered(20, 5);
        for (a, b) in rows.chunks_exact(16).zip(rows.chunks_exact(16).skip(7)) {
            let ((ca, sa), (cb, sb)) = (quantize(a), quantize(b));
            let mut dots = Vec::new();
            cairn_kernels::dot_i8_rows(&ca, &cb, &mut dots);
            let approx = sa * sb * dots[0] as f32;
            assert!(
                (approx - dot(a, b)).abs() < 0.01,
                "{approx} vs {}",
                dot(a, b)
            );
        }
        assert_eq!(quantize(&[0.0, 0.0]), (vec![0, 0], 0.0));
        assert_eq!(quantize(&[0.5, -1.0]).0, vec![64, -127]);
    }

    #[test]
    fn tiny_and_degenerate_sets_still_partition() {
        // Fewer rows than lists, and rows that are all the same.
        let rows = [1.0_f32, 0.0, 1.0, 0.0, 1.0, 0.0];
        let partition = Partition::train(&rows, 2);
        assert_eq!(partition.probe(&[1.0, 0.0], 10, 10).len(), 3);
        let zeros = vec![0.0_f32; 8 * 4];
        let partition = Partition::train(&zeros, 4);
        assert_eq!(partition.probe(&[0.0; 4], 100, 100).len(), 8);
    }
}
