//! Text embeddings: the [`Embedder`] trait, the model-free [`HashingEmbedder`], the
//! sentence-transformers model runner `SentenceEmbedder` (feature `model`), and the blob
//! encoding vectors are stored in.
//!
//! An embedder's [`Embedder::id`] and dimension are recorded with the vectors it made, so
//! a file written with one embedder is never searched with another: vectors of two
//! embedders live in unrelated spaces even when their dimensions agree.

mod hashing;
#[cfg(feature = "model")]
mod model;

use ndarray::{Array1, Array2, ArrayView1};

use crate::error::{Error, Result};
pub use hashing::HashingEmbedder;
#[cfg(feature = "model")]
pub use model::{QueryPrecision, SentenceEmbedder, SentenceEmbedderBuilder};

/// Turns texts into fixed-size vectors whose dot product measures similarity.
///
/// Stored texts ([`embed_passages`](Embedder::embed_passages)) and search queries
/// ([`embed_query`](Embedder::embed_query)) are embedded apart, because many models (e5,
/// bge) are trained with a different prefix or instruction on each side; an embedder
/// that makes no such difference keeps the default `embed_query`.
///
/// Implementations must be deterministic: the same text must give the same vector on
/// every call, in every process and after every upgrade that keeps the same
/// [`id`](Embedder::id). Vectors are compared by dot product only, so every row must be
/// L2-normalized (dot product = cosine similarity); a text with nothing to embed (empty,
/// only punctuation) may give a row of zeros, which is equally far from everything.
///
/// ```
/// use cairn::{Embedder, HashingEmbedder};
///
/// let embedder = HashingEmbedder::default();
/// let rows = embedder.embed_passages(&["Acme Corp acquired Widget", "the weather in Paris"])?;
/// assert_eq!(rows.dim(), (2, embedder.dimension()));
/// let query = embedder.embed_query("acme corporation acquires widgets")?;
/// assert!(query.dot(&rows.row(0)) > 0.5);
/// assert!(query.dot(&rows.row(0)) > query.dot(&rows.row(1)));
/// # Ok::<(), cairn::Error>(())
/// ```
pub trait Embedder: Send + Sync {
    /// A stable name for the model and its configuration, recorded in the database with
    /// the dimension; change it whenever the vectors for the same text could change.
    fn id(&self) -> &str;

    /// The length of every vector this embedder returns.
    fn dimension(&self) -> usize;

    /// One L2-normalized row of [`dimension`](Embedder::dimension) values per stored
    /// text (a chunk, an observation...), in the order of `texts`.
    fn embed_passages(&self, texts: &[&str]) -> Result<Array2<f32>>;

    /// The L2-normalized vector of a search query, comparable with the rows of
    /// [`embed_passages`](Embedder::embed_passages). By default the query is embedded
    /// as a passage.
    fn embed_query(&self, query: &str) -> Result<Array1<f32>> {
        let rows = self.embed_passages(&[query])?;
        match rows.rows().into_iter().next() {
            Some(row) if row.len() == self.dimension() => Ok(row.to_owned()),
            _ => Err(Error::Inference(format!(
                "embedder {} returned {:?} values for one query of dimension {}",
                self.id(),
                rows.dim(),
                self.dimension()
            ))),
        }
    }
}

/// Encodes a vector for a BLOB column: its values as little-endian `f32`, in order.
pub(crate) fn to_blob(row: ArrayView1<'_, f32>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(row.len() * size_of::<f32>());
    for value in row.iter() {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// Decodes a [`to_blob`] BLOB, refusing one that does not hold exactly `dimension`
/// values (a vector written by another embedder, or a damaged row).
pub(crate) fn from_blob(bytes: &[u8], dimension: usize) -> Result<Array1<f32>> {
    let (values, rest) = bytes.as_chunks::<4>();
    if values.len() != dimension || !rest.is_empty() {
        return Err(Error::invalid_input(
            "vector blob",
            format!(
                "expected {} bytes ({dimension} f32 values), found {} bytes",
                dimension.saturating_mul(size_of::<f32>()),
                bytes.len()
            ),
        ));
    }
    Ok(values
        .iter()
        .map(|&value| f32::from_le_bytes(value))
        .collect())
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    #[test]
    fn blob_round_trip_is_little_endian_and_exact() {
        let row = array![1.0_f32, -0.5, 0.0, f32::MIN_POSITIVE, 1.0e-7];
        let blob = to_blob(row.view());
        assert_eq!(blob.len(), 20);
        assert_eq!(&blob[..8], &[0, 0, 0x80, 0x3f, 0, 0, 0, 0xbf]);
        let back = from_blob(&blob, 5).unwrap();
        assert_eq!(back, row);

        let embedder = HashingEmbedder::default();
        let embedded = embedder
            .embed_passages(&["round trip"])
            .unwrap()
            .row(0)
            .to_owned();
        assert_eq!(from_blob(&to_blob(embedded.view()), 256).unwrap(), embedded);
        assert_eq!(from_blob(&[], 0).unwrap().len(), 0);
    }

    #[test]
    fn blob_of_the_wrong_length_is_refused() {
        let blob = to_blob(array![1.0_f32, 2.0, 3.0].view());
        for (bytes, dimension) in [(&blob[..], 4), (&blob[..], 2), (&blob[..11], 3)] {
            let err = from_blob(bytes, dimension).unwrap_err();
            assert!(err.is_invalid_input(), "{err}");
            let message = err.to_string();
            assert!(
                message.contains(&format!("expected {} bytes", dimension * 4))
                    && message.contains(&format!("found {} bytes", bytes.len())),
                "{message}"
            );
        }
    }
}
