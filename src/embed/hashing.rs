//! The model-free hashing embedder.

use std::borrow::Cow;

use ndarray::{Array2, ArrayViewMut1};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::embed::Embedder;
use crate::error::{Error, Result};

/// The default embedder: deterministic, model-free, no downloads, no state.
///
/// Each text is NFKC-normalized and lowercased, then split into words (runs of letters,
/// digits and combining marks, in any script). Its features are every word and every
/// character 3-gram of the word padded as `<word>` (so `<ac`, `acm`, `cme`, `me>`), which
/// makes `acquired` and `acquires`, or `Corp` and `Corporation`, overlap. Each feature
/// is hashed with FNV-1a 64 and MurmurHash3's finalizer (both implemented here, so the
/// buckets never depend on the Rust version or the platform) into one of `dimension`
/// buckets with a sign (the "hashing trick"), weighted by `1 + ln(tf)` so a repeated word does not drown the rest, and the
/// row is L2-normalized.
///
/// It captures spelling overlap, not meaning: "car" and "automobile" are unrelated to it.
///
/// ```
/// use cairn::{Embedder, HashingEmbedder};
///
/// let embedder = HashingEmbedder::new(512)?;
/// assert_eq!(embedder.id(), "cairn-hash-v1-512");
/// let rows = embedder.embed_passages(&["Widget Inc", "the weather in Paris", ""])?;
/// let norm = rows.row(0).dot(&rows.row(0)).sqrt();
/// assert!((norm - 1.0).abs() < 1e-5);
/// assert!(rows.row(2).iter().all(|&x| x == 0.0));
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashingEmbedder {
    dimension: usize,
    id: String,
}

/// Bumped whenever tokenization, features, hashing or weighting change, so databases
/// holding vectors of an older scheme refuse the new one instead of mixing spaces.
const SCHEME: &str = "cairn-hash-v1";

/// Character n-gram length. 3 is the usual sweet spot for short texts: 2-grams match
/// almost everything, 4-grams miss inflections of short words.
const NGRAM: usize = 3;

/// Hash-domain tags, so the whole word `abc` and the 3-gram `abc` of `xabcx` are
/// different features (neither contains a control byte, so no string can forge a tag).
const WORD_TAG: u8 = 0x01;
const NGRAM_TAG: u8 = 0x02;

impl HashingEmbedder {
    /// The dimension of [`HashingEmbedder::default`].
    pub const DEFAULT_DIMENSION: usize = 256;

    /// The largest dimension [`HashingEmbedder::new`] accepts (256 KiB per vector).
    pub const MAX_DIMENSION: usize = 65_536;

    /// An embedder producing vectors of `dimension` values.
    ///
    /// More buckets mean fewer collisions between unrelated features but bigger vectors;
    /// 256 to 1,024 suit agent memories of short facts.
    ///
    /// ```
    /// use cairn::HashingEmbedder;
    ///
    /// assert!(HashingEmbedder::new(1024).is_ok());
    /// let err = HashingEmbedder::new(0).unwrap_err();
    /// assert!(err.is_invalid_input());
    /// ```
    pub fn new(dimension: usize) -> Result<Self> {
        if dimension == 0 || dimension > Self::MAX_DIMENSION {
            return Err(Error::invalid_input(
                "embedding dimension",
                format!(
                    "{dimension} is outside 1..={}",
                    HashingEmbedder::MAX_DIMENSION
                ),
            ));
        }
        Ok(HashingEmbedder {
            dimension,
            id: format!("{SCHEME}-{dimension}"),
        })
    }

    fn embed_into(&self, text: &str, mut row: ArrayViewMut1<'_, f32>) {
        let mut hashes = Vec::new();
        for_each_feature(text, |hash| hashes.push(hash));
        // Sorting brings the repeats of each feature together so its count (tf) is
        // known; a HashMap would do too, but its random iteration order would change
        // the order of the float additions, and so the last bits, from run to run.
        hashes.sort_unstable();

        let dimension = self.dimension as u64;
        let mut sums = vec![0.0_f64; self.dimension];
        for run in hashes.chunk_by(|a, b| a == b) {
            let Some(&hash) = run.first() else { continue };
            let weight = 1.0 + (run.len() as f64).ln();
            // Low bits choose the bucket, the top bit the sign: after `fmix64` they are
            // independent, and signs make collisions cancel out in expectation instead
            // of piling up.
            let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
            if let Some(sum) = sums.get_mut((hash % dimension) as usize) {
                *sum += sign * weight;
            }
        }

        let norm = sums.iter().map(|x| x * x).sum::<f64>().sqrt();
        // Zero for empty text, or (vanishingly rarely) when colliding features cancel.
        if norm > 0.0 {
            for (out, sum) in row.iter_mut().zip(&sums) {
                *out = (sum / norm) as f32;
            }
        }
    }
}

impl Default for HashingEmbedder {
    fn default() -> Self {
        HashingEmbedder {
            dimension: Self::DEFAULT_DIMENSION,
            id: format!("{SCHEME}-{}", Self::DEFAULT_DIMENSION),
        }
    }
}

impl Embedder for HashingEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn embed_passages(&self, texts: &[&str]) -> Result<Array2<f32>> {
        let mut rows = Array2::zeros((texts.len(), self.dimension));
        for (text, row) in texts.iter().zip(rows.rows_mut()) {
            self.embed_into(text, row);
        }
        Ok(rows)
    }
}

/// Calls `emit` with the hash of every feature of `text`, repeats included.
fn for_each_feature(text: &str, mut emit: impl FnMut(u64)) {
    let lowered = lowercase(text);
    let mut padded = String::new();
    let mut bounds = Vec::new();
    for word in lowered.split(|c: char| !is_word_char(c)) {
        if word.is_empty() {
            continue;
        }
        emit(feature_hash(WORD_TAG, word));

        padded.clear();
        padded.push('<');
        padded.push_str(word);
        padded.push('>');
        // N-grams of characters, not bytes: a byte 3-gram of "été" would cut a letter
        // in half and match unrelated words sharing a UTF-8 lead byte.
        bounds.clear();
        bounds.extend(padded.char_indices().map(|(at, _)| at));
        bounds.push(padded.len());
        for window in bounds.windows(NGRAM + 1) {
            if let (Some(&start), Some(&end)) = (window.first(), window.last())
                && let Some(gram) = padded.get(start..end)
            {
                emit(feature_hash(NGRAM_TAG, gram));
            }
        }
    }
}

/// NFKC, so full-width and compatibility forms ("ＡＣＭＥ", "ﬁle") share features with
/// their plain spellings, then lowercase. ASCII needs neither table.
fn lowercase(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(text.to_ascii_lowercase())
        } else {
            Cow::Borrowed(text)
        }
    } else {
        Cow::Owned(text.nfkc().collect::<String>().to_lowercase())
    }
}

/// Letters and digits of every script; combining marks too, or Devanagari and Thai
/// words would fall apart at every vowel sign that is not itself alphabetic.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

fn feature_hash(tag: u8, feature: &str) -> u64 {
    fmix64(fnv1a64(&[&[tag], feature.as_bytes()]))
}

/// FNV-1a, 64-bit, over the concatenation of `parts`.
fn fnv1a64(parts: &[&[u8]]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    for &byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(PRIME);
    }
    hash
}

/// MurmurHash3's 64-bit finalizer. FNV-1a alone is weak where the hashing trick looks:
/// its multiplication carries only upwards, so its low `b` bits (the bucket, for a
/// power-of-two dimension) depend only on the low `b` bits of each input byte, and its
/// lowest bit is a mere parity. The finalizer spreads every input bit over all 64.
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

#[cfg(test)]
mod tests {
    use ndarray::Array1;

    use super::*;

    fn embed_one(embedder: &HashingEmbedder, text: &str) -> Array1<f32> {
        embedder.embed_passages(&[text]).unwrap().row(0).to_owned()
    }

    fn norm(row: &Array1<f32>) -> f32 {
        row.dot(row).sqrt()
    }

    #[test]
    fn deterministic_across_calls_and_instances() {
        let text = "Acme Corp acquired Widget Inc. — Ｆｕｌｌ-width, café, Straße, 東京";
        let a = HashingEmbedder::new(128).unwrap();
        let b = HashingEmbedder::new(128).unwrap();
        let first = embed_one(&a, text);
        assert_eq!(embed_one(&a, text), first);
        assert_eq!(embed_one(&b, text), first);
        // A batch embeds each row exactly as alone.
        let batch = a.embed_passages(&["other text", text]).unwrap();
        assert_eq!(batch.row(1), first);
    }

    #[test]
    fn rows_are_unit_length_and_empty_text_is_zero() {
        let embedder = HashingEmbedder::default();
        let rows = embedder
            .embed_passages(&[
                "",
                "a",
                "Acme Corp",
                "  ,;!? ",
                "日本語のテキスト",
                "x x x x",
            ])
            .unwrap();
        assert_eq!(rows.dim(), (6, 256));
        for i in [1, 2, 4, 5] {
            let n = norm(&rows.row(i).to_owned());
            assert!((n - 1.0).abs() < 1e-5, "row {i}: norm {n}");
        }
        for i in [0, 3] {
            assert!(rows.row(i).iter().all(|&x| x == 0.0), "row {i}");
        }
        assert_eq!(embedder.embed_passages(&[]).unwrap().dim(), (0, 256));
    }

    #[test]
    fn similar_texts_score_higher_than_unrelated_ones() {
        let embedder = HashingEmbedder::default();
        let query = embed_one(&embedder, "Acme Corp acquired Widget");
        let near = embed_one(&embedder, "acme corporation acquires widgets");
        let far = embed_one(&embedder, "the weather in Paris");
        let (near, far) = (query.dot(&near), query.dot(&far));
        assert!(near > 0.4, "near = {near}");
        assert!(far < 0.2, "far = {far}");
        assert!(near > far + 0.3, "near = {near}, far = {far}");
    }

    #[test]
    fn case_and_compatibility_forms_do_not_matter() {
        let embedder = HashingEmbedder::default();
        assert_eq!(
            embed_one(&embedder, "ＡＣＭＥ Corp"),
            embed_one(&embedder, "acme corp")
        );
        assert_eq!(
            embed_one(&embedder, "Café ÉTÉ"),
            embed_one(&embedder, "cafe\u{301} e\u{301}te\u{301}")
        );
        // Punctuation and spacing only separate words.
        assert_eq!(
            embed_one(&embedder, "acme, corp!"),
            embed_one(&embedder, "  acme   corp ")
        );
    }

    #[test]
    fn repeated_features_are_damped_sublinearly() {
        // Wide enough that these few features land in distinct buckets.
        let embedder = HashingEmbedder::new(HashingEmbedder::MAX_DIMENSION).unwrap();
        let row = embed_one(&embedder, "aa aa bb");
        let bucket = |tag, feature| (feature_hash(tag, feature) % 65_536) as usize;
        let aa = [
            bucket(WORD_TAG, "aa"),
            bucket(NGRAM_TAG, "<aa"),
            bucket(NGRAM_TAG, "aa>"),
        ];
        let bb = [
            bucket(WORD_TAG, "bb"),
            bucket(NGRAM_TAG, "<bb"),
            bucket(NGRAM_TAG, "bb>"),
        ];
        let mut all: Vec<usize> = aa.iter().chain(&bb).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            6,
            "the test's features collide: pick other words"
        );
        assert_eq!(row.iter().filter(|&&x| x != 0.0).count(), 6);
        for (&twice, &once) in aa.iter().zip(&bb) {
            let ratio = row[twice].abs() / row[once].abs();
            assert!((ratio - (1.0 + 2.0_f32.ln())).abs() < 1e-5, "ratio {ratio}");
        }
    }

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // From the FNV reference test suite (fnv1a64 of "", "a", "foobar").
        assert_eq!(fnv1a64(&[]), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(&[b"foobar"]), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a64(&[b"foo", b"", b"bar"]), fnv1a64(&[b"foobar"]));
    }

    #[test]
    fn golden_buckets_are_pinned() {
        // Expected values were computed by an independent implementation (Python). If
        // this fails, the vectors of every existing database changed: bump SCHEME (and
        // so every id) instead of updating these numbers.
        assert_eq!(feature_hash(WORD_TAG, "hi"), 0xc625_9160_45ad_9a01);
        assert_eq!(feature_hash(NGRAM_TAG, "<hi"), 0x6182_529f_6a58_d60b);
        assert_eq!(feature_hash(NGRAM_TAG, "hi>"), 0x82b3_18be_3945_f109);

        let nonzero = |dimension: usize, text: &str| -> Vec<(usize, f32)> {
            let row = embed_one(&HashingEmbedder::new(dimension).unwrap(), text);
            row.iter()
                .enumerate()
                .filter(|&(_, &x)| x != 0.0)
                .map(|(i, &x)| (i, x))
                .collect()
        };
        let assert_close = |got: Vec<(usize, f32)>, want: &[(usize, f32)]| {
            assert_eq!(got.len(), want.len(), "{got:?}");
            for (&(i, x), &(j, y)) in got.iter().zip(want) {
                assert!(i == j && (x - y).abs() < 1e-6, "{got:?} != {want:?}");
            }
        };
        let third = 1.0 / 3.0_f32.sqrt();
        assert_close(nonzero(64, "Hi"), &[(1, -third), (9, -third), (11, third)]);
        // Seven features with tf 3, 2 and 1, two of them colliding in bucket 21.
        assert_close(
            nonzero(32, "Go, go gone!"),
            &[
                (3, 0.248_931_36),
                (11, 0.248_931_36),
                (13, -0.421_477_44),
                (14, 0.421_477_44),
                (20, -0.522_410_4),
                (21, -0.497_862_73),
            ],
        );
    }

    #[test]
    fn dimension_bounds_are_typed_errors() {
        for bad in [0, HashingEmbedder::MAX_DIMENSION + 1, usize::MAX] {
            let err = HashingEmbedder::new(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    Error::InvalidInput {
                        what: "embedding dimension",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let max = HashingEmbedder::new(HashingEmbedder::MAX_DIMENSION).unwrap();
        assert_eq!(max.dimension(), 65_536);
        assert_eq!(max.id(), "cairn-hash-v1-65536");
        let default = HashingEmbedder::default();
        assert_eq!(default, HashingEmbedder::new(256).unwrap());
        assert_eq!(default.id(), "cairn-hash-v1-256");
    }
}
