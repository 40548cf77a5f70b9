//! The query path's hot loops: reduced-precision copies of the encoder's dense weights,
//! for a query's products (cairn's `SentenceEmbedder`, `src/embed/model/forward.rs`), and
//! the dot products of a vector search's scans (`src/index/partition.rs`, `nearest.rs`).
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
//! The kernels are plain Rust: `pulp` runs them compiled for the instruction set the CPU
//! has, chosen at run time (AVX-512, else AVX2 + FMA on x86-64), so the compiler turns the
//! fixed-size arrays into vector registers — no `unsafe` here. cairn itself is built for
//! baseline x86-64 (SSE2), so its own loops never see those instructions.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

use ndarray::{ArrayView2, ArrayViewMut2, Axis};

/// Output columns per panel: two 8-lane vectors (AVX2), one 16-lane vector (AVX-512).
const PANEL: usize = 16;

/// Input rows per pass over a panel with AVX2 (or without SIMD): `ROWS × PANEL` sums live
/// in registers (8 of the 16 vector registers).
const ROWS: usize = 4;

/// Input rows per pass over a panel with AVX-512: a panel's sums of one row are one
/// register, so eight rows take 8 of the 32 registers and give eight independent
/// multiply-add chains, enough to keep both FMA units busy; an 8-token query's rows pass
/// over each weight once instead of twice.
#[cfg(target_arch = "x86_64")]
const WIDE_ROWS: usize = 8;

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
    /// AVX-512 (x86-64-v4: F, BW, CD, DQ, VL): Intel since 2017 (server), AMD since Zen 4.
    #[cfg(target_arch = "x86_64")]
    V4(pulp::x86::V4),
    /// AVX2 + FMA (x86-64-v3): every x86-64 CPU since 2013–2015.
    #[cfg(target_arch = "x86_64")]
    V3(pulp::x86::V3),
    /// What `pulp` finds elsewhere (NEON on aarch64), or plain code.
    Other(pulp::Arch),
}

impl Simd {
    fn detect() -> Simd {
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = pulp::x86::V4::try_new() {
            return Simd::V4(v4);
        }
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
            Simd::V4(v4) => pulp::Simd::vectorize(v4, f),
            #[cfg(target_arch = "x86_64")]
            Simd::V3(v3) => pulp::Simd::vectorize(v3, f),
            Simd::Other(arch) => arch.dispatch(f),
        }
    }

    /// Runs `op` compiled for this instruction set (its `with_simd` and what that calls
    /// inline into a function with the target features enabled).
    #[inline(always)]
    fn op<Op: pulp::WithSimd>(self, op: Op) -> Op::Output {
        match self {
            #[cfg(target_arch = "x86_64")]
            Simd::V4(v4) => pulp::Simd::vectorize(v4, op),
            #[cfg(target_arch = "x86_64")]
            Simd::V3(v3) => pulp::Simd::vectorize(v3, op),
            Simd::Other(arch) => arch.dispatch(op),
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
        match self.simd {
            #[cfg(target_arch = "x86_64")]
            Simd::V4(_) => self.product_in::<WIDE_ROWS>(x, out, tasks),
            _ => self.product_in::<ROWS>(x, out, tasks),
        }
    }

    /// [`product`](Self::product) with the input rows in groups of `R`.
    fn product_in<const R: usize>(
        &self,
        x: ArrayView2<'_, f32>,
        out: ArrayViewMut2<'_, f32>,
        tasks: usize,
    ) {
        debug_assert_eq!(x.ncols(), self.inputs);
        debug_assert_eq!(out.dim(), (x.nrows(), self.outputs));
        // The input rows in groups of `R`, each group's values input by input, so the
        // kernel reads them in the order it multiplies (zeros pad the last group).
        let groups = x.nrows().div_ceil(R);
        let mut grouped = vec![0.0_f32; groups * self.inputs * R];
        for (i, row) in x.rows().into_iter().enumerate() {
            let (group, r) = (i / R, i % R);
            let base = group * self.inputs * R;
            for (k, &value) in row.iter().enumerate() {
                grouped[base + k * R + r] = value;
            }
        }
        let panels = self.outputs.div_ceil(PANEL);
        self.split::<R>(&grouped, x.nrows(), out, 0..panels, tasks);
    }

    fn split<const R: usize>(
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
                || self.split::<R>(grouped, rows, left, panels.start..mid, tasks / 2),
                || self.split::<R>(grouped, rows, right, mid..panels.end, tasks - tasks / 2),
            );
            return;
        }
        let mut out = out;
        match (&self.values, self.simd) {
            // AVX-512 in explicit 16-lane registers: left to itself the compiler keeps
            // to 256-bit vectors, half of what each FMA unit takes.
            #[cfg(target_arch = "x86_64")]
            (Values::Bf16(values), Simd::V4(v4)) => pulp::Simd::vectorize(v4, || {
                let kernel = |w: &[u16], x: &[f32]| panel_v4::<u16, R>(v4, w, x);
                self.run::<_, R>(values, None, grouped, rows, &mut out, panels, kernel);
            }),
            #[cfg(target_arch = "x86_64")]
            (Values::Int8 { values, scales }, Simd::V4(v4)) => pulp::Simd::vectorize(v4, || {
                let kernel = |w: &[i8], x: &[f32]| panel_v4::<i8, R>(v4, w, x);
                self.run::<_, R>(
                    values,
                    Some(scales),
                    grouped,
                    rows,
                    &mut out,
                    panels,
                    kernel,
                );
            }),
            (Values::Bf16(values), simd) => simd.run(|| {
                let kernel = panel::<u16, R>;
                self.run::<_, R>(values, None, grouped, rows, &mut out, panels, kernel);
            }),
            (Values::Int8 { values, scales }, simd) => simd.run(|| {
                let kernel = panel::<i8, R>;
                self.run::<_, R>(
                    values,
                    Some(scales),
                    grouped,
                    rows,
                    &mut out,
                    panels,
                    kernel,
                );
            }),
        }
    }

    /// The panels `panels` (their columns are `out`'s, from its first): each panel's
    /// weights are read from memory once and stay in the L1/L2 cache while every group of
    /// `R` rows passes over them.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn run<W: Widen, const R: usize>(
        &self,
        values: &[W],
        scales: Option<&[f32]>,
        grouped: &[f32],
        rows: usize,
        out: &mut ArrayViewMut2<'_, f32>,
        panels: std::ops::Range<usize>,
        kernel: impl Fn(&[W], &[f32]) -> [[f32; PANEL]; R],
    ) {
        let per_panel = self.inputs * PANEL;
        let per_group = self.inputs * R;
        let first = panels.start;
        for p in panels {
            let weights = &values[p * per_panel..(p + 1) * per_panel];
            let columns = p * PANEL..((p + 1) * PANEL).min(self.outputs);
            let scale = scales.map(|s| &s[p * PANEL..(p + 1) * PANEL]);
            for (group, inputs) in grouped.chunks_exact(per_group).enumerate() {
                let sums = kernel(weights, inputs);
                for (r, sums) in sums.iter().enumerate() {
                    let row = group * R + r;
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

/// `R` rows' sums over one panel: `inputs` is the group's values input by input (`R`
/// each), `weights` the panel's (`PANEL` each).
#[inline(always)]
fn panel<W: Widen, const R: usize>(weights: &[W], inputs: &[f32]) -> [[f32; PANEL]; R] {
    let mut sums = [[0.0_f32; PANEL]; R];
    let (weights, _) = weights.as_chunks::<PANEL>();
    let (inputs, _) = inputs.as_chunks::<R>();
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

/// A stored weight the AVX-512 kernel widens sixteen at a time.
#[cfg(target_arch = "x86_64")]
trait Widen16: Widen {
    fn widen16(v4: pulp::x86::V4, w: [Self; PANEL]) -> pulp::f32x16;
}

#[cfg(target_arch = "x86_64")]
impl Widen16 for u16 {
    #[inline(always)]
    fn widen16(v4: pulp::x86::V4, w: [u16; PANEL]) -> pulp::f32x16 {
        // A bfloat16 is the high half of an f32: zero-extend, shift into place.
        let bits = v4.convert_u16x16_to_u32x16(pulp::cast(w));
        pulp::cast(v4.shl_const_u32x16::<16>(bits))
    }
}

#[cfg(target_arch = "x86_64")]
impl Widen16 for i8 {
    #[inline(always)]
    fn widen16(v4: pulp::x86::V4, w: [i8; PANEL]) -> pulp::f32x16 {
        v4.convert_i32x16_to_f32x16(v4.convert_i8x16_to_i32x16(pulp::cast(w)))
    }
}

/// [`panel`] in AVX-512 registers: one 16-lane register per row's sums, so `R` rows are
/// `R` independent multiply-add chains over one widened weight register per input.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn panel_v4<W: Widen16, const R: usize>(
    v4: pulp::x86::V4,
    weights: &[W],
    inputs: &[f32],
) -> [[f32; PANEL]; R] {
    let mut sums = [v4.splat_f32x16(0.0); R];
    let (weights, _) = weights.as_chunks::<PANEL>();
    let (inputs, _) = inputs.as_chunks::<R>();
    for (w, x) in weights.iter().zip(inputs) {
        let w = W::widen16(v4, *w);
        for (sum, &x) in sums.iter_mut().zip(x) {
            *sum = v4.mul_add_f32x16(v4.splat_f32x16(x), w, *sum);
        }
    }
    sums.map(pulp::cast)
}

/// The dot product of `query` with each row of `rows` (row-major, `query.len()` values
/// each; a partial last row is ignored), appended to `out`: the quantized scan of a
/// vector search's lists (`src/index/partition.rs`).
///
/// Compiled for the CPU's instruction set (see [`Packed`]): a caller built for baseline
/// x86-64 gets SSE2 code for this loop, a fraction of what AVX2 does per cycle.
pub fn dot_i8_rows(rows: &[i8], query: &[i8], out: &mut Vec<i32>) {
    if query.is_empty() {
        return;
    }
    Simd::detect().op(DotI8Rows { rows, query, out });
}

/// `a · b` over the shorter of the two, compiled for the CPU's instruction set.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    Simd::detect().op(DotF32 { a, b })
}

/// The dot product of `query` with the rows of `rows` (row-major, `query.len()` values
/// each) at `positions`, as `(position, score)` pairs appended to `out` (a position past
/// the rows is skipped); one dispatch to the CPU's instruction set for all of them.
pub fn dot_f32_rows(rows: &[f32], query: &[f32], positions: &[u32], out: &mut Vec<(u32, f32)>) {
    Simd::detect().op(DotF32Rows {
        rows,
        query,
        positions,
        out,
    });
}

// The dot products as `pulp` operations: `with_simd` is inlined, with the loops it
// calls, into the function pulp compiles for the instruction set (a closure is not
// reliably inlined there, and then runs as baseline code).

struct DotI8Rows<'a> {
    rows: &'a [i8],
    query: &'a [i8],
    out: &'a mut Vec<i32>,
}

impl pulp::WithSimd for DotI8Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let d = self.query.len();
        self.out.reserve(self.rows.len() / d);
        for row in self.rows.chunks_exact(d) {
            self.out.push(dot_i8(row, self.query));
        }
    }
}

struct DotF32<'a> {
    a: &'a [f32],
    b: &'a [f32],
}

impl pulp::WithSimd for DotF32<'_> {
    type Output = f32;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) -> f32 {
        dot_f32_inline(self.a, self.b)
    }
}

struct DotF32Rows<'a> {
    rows: &'a [f32],
    query: &'a [f32],
    positions: &'a [u32],
    out: &'a mut Vec<(u32, f32)>,
}

impl pulp::WithSimd for DotF32Rows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let d = self.query.len();
        self.out.reserve(self.positions.len());
        for &at in self.positions {
            let start = at as usize * d;
            if let Some(row) = self.rows.get(start..start + d) {
                self.out.push((at, dot_f32_inline(row, self.query)));
            }
        }
    }
}

/// GELU in its exact (`erf`) form, in place: `v · (1 + erf(v / √2)) / 2`, with `erf` by
/// Abramowitz and Stegun 7.1.26 (within 1.5e-7) and its `exp` by a polynomial the
/// compiler vectorizes (within 2 ulp of libm's): a query's 6 layers × tokens × 1,536
/// activations spent ~0.2 ms in libm's scalar `expf` (measured, 8 tokens).
pub fn gelu_erf(values: &mut [f32]) {
    Simd::detect().op(GeluErf { values });
}

struct GeluErf<'a> {
    values: &'a mut [f32],
}

impl pulp::WithSimd for GeluErf<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        let (blocks, rest) = self.values.as_chunks_mut::<16>();
        for block in blocks {
            for v in block.iter_mut() {
                *v = gelu_erf_one(*v);
            }
        }
        for v in rest {
            *v = gelu_erf_one(*v);
        }
    }
}

#[inline(always)]
fn gelu_erf_one(v: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_72,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    let x = v * std::f32::consts::FRAC_1_SQRT_2;
    let z = x.abs();
    let t = 1.0 / (1.0 + P * z);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let erf = (1.0 - poly * exp_negative(-z * z)).copysign(x);
    (erf + 1.0) * 0.5 * v
}

/// `e^x` for `x ≤ 0`, clamped at -87 (e^-87 ≈ 1.6e-38: next to the 1 it is subtracted
/// from in `erf`, nothing; below, `2^n` would leave the normal range): `x = n·ln 2 + r` with
/// |r| ≤ ln 2 / 2, Cephes' degree-6 polynomial for `e^r`, `2^n` put in the exponent bits.
/// Branch-free, so a loop of it vectorizes.
#[inline(always)]
fn exp_negative(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E).round();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 0.166_666_65;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // n is in [-126, 0]: 2^n is a normal f32.
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    e * scale
}

/// Sixteen-lane f32 dot product (the lanes become vector registers).
#[inline(always)]
fn dot_f32_inline(a: &[f32], b: &[f32]) -> f32 {
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

/// Integer dot product in 32 lanes: each pair of `i8` is multiplied in 16 bits (no
/// overflow: |a·b| ≤ 128²) and summed in 32, the pattern the compiler turns into
/// widening multiply-adds.
#[inline(always)]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0_i32; 32];
    let (a_blocks, a_rest) = a.as_chunks::<32>();
    let (b_blocks, b_rest) = b.as_chunks::<32>();
    for (x, y) in a_blocks.iter().zip(b_blocks) {
        for ((lane, &a), &b) in lanes.iter_mut().zip(x).zip(y) {
            *lane += i32::from(i16::from(a) * i16::from(b));
        }
    }
    let tail: i32 = a_rest
        .iter()
        .zip(b_rest)
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum();
    lanes.iter().sum::<i32>() + tail
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
    fn dot_kernels_match_plain_sums() {
        for d in [1, 31, 32, 33, 384, 385] {
            let rows: Vec<i8> = (0..3 * d + 5)
                .map(|i| ((i * 37 + 11) % 255) as i32 - 127)
                .map(|v| v as i8)
                .collect();
            let query: Vec<i8> = (0..d)
                .map(|i| (((i * 91 + 3) % 255) as i32 - 127) as i8)
                .collect();
            let mut got = Vec::new();
            dot_i8_rows(&rows, &query, &mut got);
            let want: Vec<i32> = rows
                .chunks_exact(d)
                .map(|row| {
                    row.iter()
                        .zip(&query)
                        .map(|(&a, &b)| i32::from(a) * i32::from(b))
                        .sum()
                })
                .collect();
            assert_eq!(got, want, "d = {d}");

            let floats: Vec<f32> = rows.iter().map(|&v| f32::from(v) / 127.0).collect();
            let fquery: Vec<f32> = query.iter().map(|&v| f32::from(v) / 127.0).collect();
            let mut scored = Vec::new();
            dot_f32_rows(&floats, &fquery, &[2, 0, 100], &mut scored);
            // Position 100 is past the rows: skipped.
            assert_eq!(scored.iter().map(|s| s.0).collect::<Vec<_>>(), [2, 0]);
            for &(at, score) in &scored {
                let row = &floats[at as usize * d..(at as usize + 1) * d];
                let want: f32 = row.iter().zip(&fquery).map(|(a, b)| a * b).sum();
                assert!((score - want).abs() < 1e-4 * d as f32, "d = {d}");
                assert!((dot_f32(row, &fquery) - score).abs() < 1e-6);
            }
        }
        let mut none = Vec::new();
        dot_i8_rows(&[1, 2, 3], &[], &mut none);
        assert!(none.is_empty());
    }

    #[test]
    fn gelu_matches_libm_exp() {
        let reference = |v: f32| {
            let x = v * std::f32::consts::FRAC_1_SQRT_2;
            let z = x.abs();
            let t = 1.0 / (1.0 + 0.327_591_1 * z);
            let poly = t
                * (0.254_829_6
                    + t * (-0.284_496_72
                        + t * (1.421_413_8 + t * (-1.453_152_1 + t * 1.061_405_4))));
            let erf = (1.0 - poly * (-z * z).exp()).copysign(x);
            (erf + 1.0) * 0.5 * v
        };
        let mut values: Vec<f32> = (-20_000..=20_000).map(|i| i as f32 / 1000.0).collect();
        values.extend([0.0, -0.0, 1e-30, -1e-30, 1e6, -1e6]);
        let want: Vec<f32> = values.iter().map(|&v| reference(v)).collect();
        let mut got = values.clone();
        gelu_erf(&mut got);
        for ((v, got), want) in values.iter().zip(&got).zip(&want) {
            // `1 + erf` cancels for negative inputs: an ulp of `erf` (about 1) times |v| / 2.
            assert!(
                (got - want).abs() <= 4.0 * f32::EPSILON * (want.abs() + v.abs()),
                "gelu({v}) = {got}, libm exp gives {want}"
            );
        }
        // Down to the clamp at -87.
        for x in (0..=8700).map(|i| -(i as f32) / 100.0) {
            let (got, want) = (exp_negative(x), x.exp());
            assert!(
                (got - want).abs() <= 2.0 * f32::EPSILON * want,
                "exp({x}) = {got} not {want}"
            );
        }
        assert_eq!(exp_negative(-1000.0), exp_negative(-87.0));
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
                let mut packed = Packed::new(w.view(), precision).unwrap();
                // Every instruction set this CPU has, each with its own rows per group.
                let mut sets = vec![Simd::Other(pulp::Arch::new())];
                #[cfg(target_arch = "x86_64")]
                {
                    sets.extend(pulp::x86::V3::try_new().map(Simd::V3));
                    sets.extend(pulp::x86::V4::try_new().map(Simd::V4));
                }
                for (simd, tasks) in sets.into_iter().flat_map(|s| [(s, 1), (s, 2)]) {
                    packed.simd = simd;
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
