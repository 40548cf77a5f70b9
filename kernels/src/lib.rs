//! Reduced-precision copies of the encoder's dense weights, for a query's products
//! (cairn's `SentenceEmbedder`, `src/embed/model/forward.rs`).
//!
//! A crate of its own so that a debug build of cairn still runs it optimized (the
//! workspace's `[profile.dev.package.cairn-kernels]`): unoptimized, one query's products
//! took seconds, which made every test that searches with a model slow.
//!
//! Why: a query is a product of a few rows (8–30 tokens) with every weight matrix, so it
//! reads all 42 MB of the f32 encoder weights for a few multiply-adds per weight — more
//! than this machine's shared L3 — and `matrixmultiply` copies (packs) every weight it
//! reads before its kernel sees it (`docs/benchmarks.md`, "A query's embedding"). Here the
//! weights are laid out once, at load time, the way the kernel reads them (panels of
//! [`PANEL`] output columns, each panel's inputs one after another) and in 2 bytes
//! (bfloat16) or 1 byte (int8 with one scale per output column) per weight: a product
//! streams each weight once, widening it to f32 in registers; the input rows and the
//! sums stay f32.
//!
//! The kernel is plain Rust: `pulp` runs it compiled for the instruction set the CPU has,
//! chosen at run time (AVX2 + FMA on x86-64) and compiles the loops below for it, so the compiler turns
//! the fixed-size arrays into vector registers — no `unsafe` here.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// Output columns per panel: two 8-lane vectors (AVX2), one 16-lane vector (AVX-512).
const PANEL: usize = 16;

/// Input rows per pass over a panel: `ROWS × PANEL` sums live in registers.
const ROWS: usize = 4;

/// A product splits over threads only while each part keeps at least this many panels.
const MIN_PANELS_PER_TASK: usize = 8;

/// The precision of the weights a query's embedding reads (passages are always embedded
/// with the model's f32 weights, so stored vectors do not depend on this).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueryPrecision {
    /// The model's own f32 weights, as passages use.
    F32,
    /// bfloat16 weights (8 bits of mantissa), half the bytes.
    #[default]
    Bf16,
    /// int8 weights with one f32 scale per output column, a quarter of the bytes.
    Int8,
}

/// One dense layer's weight (`inputs × outputs`) in a reduced precision, in panels.
pub struct Packed {
    inputs: usize,
    outputs: usize,
    values: Values,
    simd: Simd,
}

/// The instruction set the kernel is compiled for, chosen at run time.
#[derive(Clone, Copy)]
enum Simd {
    /// AVX2 + FMA (x86-64-v3): every x86-64 CPU since 2013–2015.
    #[cfg(target_arch = "x86_64")]
    V3(pulp::x86::V3),
    /// What `pulp` finds elsewhere (NEON on aarch64), or plain code.
    Other(pulp::Arch),
}

impl Simd {
    fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            return Simd::V3(v3);
        }
        Simd::Other(pulp::Arch::new())
    }

    /// Runs `f` compiled for this instruction set (`f` and what it calls inline into a
    /// function with the target features enabled).
    #[inline(always)]
    fn run<R>(self, f: impl FnOnce() -> R) -> R {
        match self {
            #[cfg(target_arch = "x86_64")]
            Simd::V3(v3) => pulp::Simd::vectorize(v3, f),
            Simd::Other(arch) => arch.dispatch(f),
        }
    }
}

enum Values {
    /// bfloat16 bit patterns: the high half of an f32.
    Bf16(Vec<u16>),
    /// Rounded `weight / scale`, and each output column's scale (padded to whole panels).
    Int8 { values: Vec<i8>, scales: Vec<f32> },
}

/// A stored weight, widened to f32 in the kernel.
trait Widen: Copy + Default {
    fn widen(self) -> f32;
}

impl Widen for u16 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from_bits(u32::from(self) << 16)
    }
}

impl Widen for i8 {
    #[inline(always)]
    fn widen(self) -> f32 {
        f32::from(self)
    }
}

/// `value` rounded to the nearest bfloat16 (ties to even); weights are finite.
fn to_bf16(value: f32) -> u16 {
    let bits = value.to_bits();
    let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
    (rounded >> 16) as u16
}

impl Packed {
    /// `weight` (`inputs × outputs`) in `precision`; `None` for [`QueryPrecision::F32`].
    pub fn new(weight: ArrayView2<'_, f32>, precision: QueryPrecision) -> Option<Self> {
        let (inputs, outputs) = weight.dim();
        let panels = outputs.div_ceil(PANEL);
        // Column `j` of panel `p`, input `k`, at `(p × inputs + k) × PANEL + j`; columns
        // past `outputs` are zeros.
        let layout = |value: &dyn Fn(usize, usize) -> f32| {
            let mut out = Vec::with_capacity(panels * inputs * PANEL);
            for p in 0..panels {
                for k in 0..inputs {
                    for j in p * PANEL..(p + 1) * PANEL {
                        out.push(if j < outputs { value(k, j) } else { 0.0 });
                    }
                }
            }
            out
        };
        let values = match precision {
            QueryPrecision::F32 => return None,
            QueryPrecision::Bf16 => {
                let floats = layout(&|k, j| weight[[k, j]]);
                Values::Bf16(floats.into_iter().map(to_bf16).collect())
            }
            QueryPrecision::Int8 => {
                let mut scales: Vec<f32> = weight
                    .axis_iter(Axis(1))
                    .map(|column| column.fold(0.0_f32, |m, &w| m.max(w.abs())) / 127.0)
                    .collect();
                scales.resize(panels * PANEL, 0.0);
                let floats = layout(&|k, j| {
                    let scale = scales[j];
                    if scale > 0.0 {
                        weight[[k, j]] / scale
                    } else {
                        0.0
                    }
                });
                let values = floats
                    .into_iter()
                    .map(|q| q.round().clamp(-127.0, 127.0) as i8)
                    .collect();
                Values::Int8 { values, scales }
            }
        };
        Some(Packed {
            inputs,
            outputs,
            values,
            simd: Simd::detect(),
        })
    }

    /// `out += x · weight`, split by panels into at most `tasks` parts run with
    /// `rayon::join` on the current pool.
    pub fn product(&self, x: ArrayView2<'_, f32>, out: ArrayViewMut2<'_, f32>, tasks: usize) {
        debug_assert_eq!(x.ncols(), self.inputs);
        debug_assert_eq!(out.dim(), (x.nrows(), self.outputs));
        // The input rows in groups of `ROWS`, each group's values input by input, so the
        // kernel reads them in the order it multiplies (zeros pad the last group).
        let groups = x.nrows().div_ceil(ROWS);
        let mut grouped = vec![0.0_f32; groups * self.inputs * ROWS];
        for (i, row) in x.rows().into_iter().enumerate() {
            let (group, r) = (i / ROWS, i % ROWS);
            let base = group * self.inputs * ROWS;
            for (k, &value) in row.iter().enumerate() {
                grouped[base + k * ROWS + r] = value;
            }
        }
        let panels = self.outputs.div_ceil(PANEL);
        self.split(&grouped, x.nrows(), out, 0..panels, tasks);
    }

    fn split(
        &self,
        grouped: &[f32],
        rows: usize,
        out: ArrayViewMut2<'_, f32>,
        panels: std::ops::Range<usize>,
        tasks: usize,
    ) {
        let count = panels.len();
        if tasks > 1 && count >= 2 * MIN_PANELS_PER_TASK {
            let mid = panels.start + count / 2;
            let (left, right) = out.split_at(Axis(1), (mid - panels.start) * PANEL);
            rayon::join(
                || self.split(grouped, rows, left, panels.start..mid, tasks / 2),
                || self.split(grouped, rows, right, mid..panels.end, tasks - tasks / 2),
            );
            return;
        }
        let mut out = out;
        match &self.values {
            Values::Bf16(values) => self.simd.run(|| {
                self.run(values, None, grouped, rows, &mut out, panels);
            }),
            Values::Int8 { values, scales } => self.simd.run(|| {
                self.run(values, Some(scales), grouped, rows, &mut out, panels);
            }),
        }
    }

    /// The panels `panels` (their columns are `out`'s, from its first): each panel's
    /// weights are read from memory once and stay in the L1/L2 cache while every group of
    /// rows passes over them.
    #[inline(always)]
    fn run<W: Widen>(
        &self,
        values: &[W],
        scales: Option<&[f32]>,
        grouped: &[f32],
        rows: usize,
        out: &mut ArrayViewMut2<'_, f32>,
        panels: std::ops::Range<usize>,
    ) {
        let per_panel = self.inputs * PANEL;
        let per_group = self.inputs * ROWS;
        let first = panels.start;
        for p in panels {
            let weights = &values[p * per_panel..(p + 1) * per_panel];
            let columns = p * PANEL..((p + 1) * PANEL).min(self.outputs);
            let scale = scales.map(|s| &s[p * PANEL..(p + 1) * PANEL]);
            for (group, inputs) in grouped.chunks_exact(per_group).enumerate() {
                let sums = panel(weights, inputs);
                for (r, sums) in sums.iter().enumerate() {
                    let row = group * ROWS + r;
                    if row >= rows {
                        break;
                    }
                    for (c, j) in columns.clone().enumerate() {
                        let sum = scale.map_or(sums[c], |s| sums[c] * s[c]);
                        out[[row, j - first * PANEL]] += sum;
                    }
                }
            }
        }
    }
}

/// `ROWS` rows' sums over one panel: `inputs` is the group's values input by input
/// (`ROWS` each), `weights` the panel's (`PANEL` each).
#[inline(always)]
fn panel<W: Widen>(weights: &[W], inputs: &[f32]) -> [[f32; PANEL]; ROWS] {
    let mut sums = [[0.0_f32; PANEL]; ROWS];
    let (weights, _) = weights.as_chunks::<PANEL>();
    let (inputs, _) = inputs.as_chunks::<ROWS>();
    for (w, x) in weights.iter().zip(inputs) {
        let w: [f32; PANEL] = std::array::from_fn(|c| w[c].widen());
        for (sums, &x) in sums.iter_mut().zip(x) {
            for (sum, &w) in sums.iter_mut().zip(&w) {
                *sum = x.mul_add(w, *sum);
            }
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use ndarray::Array2;

    use super::*;

    /// A deterministic `rows × cols` matrix of values in (-1, 1).
    fn matrix(rows: usize, cols: usize, seed: u32) -> Array2<f32> {
        Array2::from_shape_fn((rows, cols), |(i, j)| {
            let h = (i as u32 * 7919 + j as u32 * 104_729 + seed).wrapping_mul(2_654_435_761);
            (h >> 8) as f32 / (1 << 23) as f32 - 1.0
        })
    }

    #[test]
    fn bf16_rounds_to_nearest() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(1.0_f32.to_bits() >> 16, 0x3f80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1).
        assert_eq!(to_bf16(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(to_bf16(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(u16::widen(to_bf16(-2.5)), -2.5);
    }

    #[test]
    fn products_match_f32_within_the_precision() {
        // Rows not a multiple of ROWS, columns not of PANEL, enough panels to split.
        for (rows, inputs, outputs) in [(1, 5, 3), (7, 384, 1152), (9, 100, 300)] {
            let x = matrix(rows, inputs, 1);
            let w = matrix(inputs, outputs, 2);
            let start = matrix(rows, outputs, 3);
            let want = &start + &x.dot(&w);
            for (precision, tolerance) in
                [(QueryPrecision::Bf16, 4e-3), (QueryPrecision::Int8, 1.2e-2)]
            {
                let packed = Packed::new(w.view(), precision).unwrap();
                for tasks in [1, 2] {
                    let mut got = start.clone();
                    let pool = rayon::ThreadPoolBuilder::new()
                        .num_threads(2)
                        .build()
                        .unwrap();
                    pool.install(|| packed.product(x.view(), got.view_mut(), tasks));
                    // Each sum has `inputs` terms of relative error up to `tolerance`.
                    let bound = tolerance * (inputs as f32).sqrt();
                    let worst = (&got - &want).iter().fold(0.0_f32, |m, d| m.max(d.abs()));
                    assert!(
                        worst < bound,
                        "{precision:?} {rows}x{inputs}x{outputs}: {worst}"
                    );
                }
            }
        }
        assert!(Packed::new(matrix(2, 2, 0).view(), QueryPrecision::F32).is_none());
    }
}
