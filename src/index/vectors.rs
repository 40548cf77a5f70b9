//! Stored embedding vectors: which embedder made them (`meta`, key `embedder`), the rows
//! (table `vector`), and the in-memory matrix a search scores against.
//!
//! The indexer embeds what it indexes (the kinds the memory was configured to embed) and
//! stores the rows in the file, so a vector is computed once, by one process, and every
//! process that opens the file loads it. A reader keeps every row in one matrix and loads
//! only the rows written since its last search (`vector.id` is AUTOINCREMENT, never
//! reused). A deleted row's vector may stay in a reader's matrix until it reopens; the
//! retriever drops hits whose row is gone.

use std::sync::Arc;

use ndarray::ArrayView1;
use parking_lot::RwLock;
use rusqlite::{Connection, OptionalExtension, params};

use crate::config::Options;
use crate::db::Db;
use crate::embed::{Embedder, from_blob, to_blob};
use crate::error::{Error, Result};
use crate::index::nearest::VectorIndex;
use crate::index::schema::DocKind;

/// What a memory embeds, and with what.
#[derive(Clone)]
pub(crate) struct Embedding {
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) kinds: Vec<DocKind>,
}

impl std::fmt::Debug for Embedding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedding")
            .field(
                "embedder",
                &describe(self.embedder.id(), self.embedder.dimension()),
            )
            .field("kinds", &self.kinds)
            .finish()
    }
}

impl Embedding {
    /// The embedder `options` configure, with the kinds it embeds; `None` without one.
    pub(crate) fn configured(options: &Options) -> Option<Embedding> {
        options.embedder.as_ref().map(|e| Embedding {
            embedder: Arc::clone(&e.0),
            kinds: options.embed_kinds.clone(),
        })
    }
}

fn describe(id: &str, dimension: usize) -> String {
    format!("{id} (dimension {dimension})")
}

/// Records the embedder in a file that has none, or checks it against the recorded one.
/// A writer without an embedder is refused on a file that has one: the vectors of what
/// it indexed would be missing for good.
pub(crate) fn check_embedder(db: &Db, embedding: Option<&Embedding>) -> Result<()> {
    let read_only = db.options().read_only;
    let given = embedding.map(|e| (e.embedder.id().to_owned(), e.embedder.dimension()));
    let mut stored = db.read(recorded)?;
    if stored.is_none()
        && !read_only
        && let Some((id, dimension)) = &given
    {
        let value = serde_json::json!({ "id": id, "dimension": dimension }).to_string();
        db.write(|c| {
            let recorded = c.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('embedder', ?1)",
                [value],
            )?;
            // Rows written before any embedder: the index will not embed them by itself.
            if recorded == 1 {
                super::backfill::request_if_rows(c)?;
            }
            Ok(())
        })?;
        // Another process may have recorded its embedder first.
        stored = db.read(recorded)?;
    }
    match (stored, given) {
        (None, _) => Ok(()),
        (Some(_), None) if read_only => Ok(()),
        (Some(stored), given) if Some(&stored) != given.as_ref() => Err(Error::EmbedderMismatch {
            stored: describe(&stored.0, stored.1),
            given: given.map_or_else(|| "no embedder".to_owned(), |(id, d)| describe(&id, d)),
        }),
        _ => Ok(()),
    }
}

/// The file's embedder (`id (dimension N)`) when this writable open configures none:
/// such an open must only read, or what it indexed would lack vectors for good.
pub(crate) fn missing_embedder(db: &Db) -> Result<Option<String>> {
    if db.options().read_only || db.options().embedder.is_some() {
        return Ok(None);
    }
    Ok(db
        .read(recorded)?
        .map(|(id, dimension)| describe(&id, dimension)))
}

fn recorded(conn: &Connection) -> Result<Option<(String, usize)>> {
    let value: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'embedder'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(value) = value else { return Ok(None) };
    let parsed: serde_json::Value = serde_json::from_str(&value)
        .map_err(|e| Error::Index(format!("meta 'embedder' is not JSON: {e}")))?;
    match (parsed["id"].as_str(), parsed["dimension"].as_u64()) {
        (Some(id), Some(dimension)) => Ok(Some((id.to_owned(), dimension as usize))),
        _ => Err(Error::Index(format!(
            "meta 'embedder' lacks an id or a dimension: {value}"
        ))),
    }
}

/// A vector to store or drop, computed by the indexer before it takes the write lock.
pub(crate) enum VectorWrite {
    Put(DocKind, i64, Vec<u8>),
    Delete(DocKind, i64),
}

/// Texts are embedded this many at a time: a real model's memory grows with the batch,
/// and `stopped` is asked between batches, so a closing memory waits for one batch at most.
const EMBED_BATCH: usize = 32;

/// Embeds `texts` (the current text of each touched row; `None`: the row is gone), until
/// `stopped` says the memory is closing.
pub(crate) fn embed(
    embedder: &dyn Embedder,
    texts: Vec<(DocKind, i64, Option<String>)>,
    stopped: &dyn Fn() -> bool,
) -> Result<Vec<VectorWrite>> {
    let mut writes = Vec::with_capacity(texts.len());
    let mut present = Vec::new();
    for (kind, id, text) in texts {
        match text {
            Some(text) => present.push((kind, id, text)),
            None => writes.push(VectorWrite::Delete(kind, id)),
        }
    }
    for batch in present.chunks(EMBED_BATCH) {
        if stopped() {
            return Err(Error::Index("the memory is closing".to_owned()));
        }
        let refs: Vec<&str> = batch.iter().map(|(_, _, t)| t.as_str()).collect();
        let rows = embedder.embed_passages(&refs)?;
        if rows.dim() != (batch.len(), embedder.dimension()) {
            return Err(Error::Index(format!(
                "embedder {} returned {:?} values for {} texts of dimension {}",
                embedder.id(),
                rows.dim(),
                batch.len(),
                embedder.dimension()
            )));
        }
        for ((kind, id, _), row) in batch.iter().zip(rows.rows()) {
            writes.push(VectorWrite::Put(*kind, *id, to_blob(row)));
        }
    }
    Ok(writes)
}

pub(crate) fn store(conn: &Connection, write: &VectorWrite) -> Result<()> {
    match write {
        VectorWrite::Put(kind, id, data) => {
            // REPLACE gives the row a new id, so readers that loaded the old one reload it.
            conn.prepare_cached(
                "INSERT OR REPLACE INTO vector(kind, target, data) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![kind.as_str(), id, data])?;
        }
        VectorWrite::Delete(kind, id) => {
            conn.prepare_cached("DELETE FROM vector WHERE kind = ?1 AND target = ?2")?
                .execute(params![kind.as_str(), id])?;
        }
    }
    Ok(())
}

/// The stored vectors, loaded into one matrix and kept current.
pub(crate) struct VectorCache {
    loaded: RwLock<Loaded>,
}

struct Loaded {
    /// The highest `vector.id` loaded.
    through: i64,
    index: VectorIndex,
}

impl VectorCache {
    pub(crate) fn new(dimension: usize) -> Self {
        VectorCache {
            loaded: RwLock::new(Loaded {
                through: 0,
                index: VectorIndex::new(dimension),
            }),
        }
    }

    /// The `k` stored vectors most similar to `query`, best first, after loading the rows
    /// `conn` sees that this cache has not loaded yet.
    pub(crate) fn top_k(
        &self,
        conn: &Connection,
        query: ArrayView1<'_, f32>,
        k: usize,
    ) -> Result<Vec<(DocKind, i64, f32)>> {
        let newest: i64 = conn
            .prepare_cached("SELECT coalesce(max(id), 0) FROM vector")?
            .query_row([], |r| r.get(0))?;
        if newest > self.loaded.read().through {
            self.load(conn)?;
        }
        let loaded = self.loaded.read();
        Ok(loaded
            .index
            .top_k(query, k)
            .into_iter()
            .filter_map(|(key, score)| {
                let (kind, id) = unpack(key)?;
                Some((kind, id, score))
            })
            .collect())
    }

    fn load(&self, conn: &Connection) -> Result<()> {
        let mut loaded = self.loaded.write();
        let dimension = loaded.index.dimension();
        let mut stmt = conn.prepare_cached(
            "SELECT id, kind, target, data FROM vector WHERE id > ?1 ORDER BY id",
        )?;
        let mut rows = stmt.query([loaded.through])?;
        while let Some(row) = rows.next()? {
            let id: i64 = row.get(0)?;
            let kind: String = row.get(1)?;
            let target: i64 = row.get(2)?;
            let data: Vec<u8> = row.get(3)?;
            if let Some(kind) = DocKind::parse(&kind) {
                let vector = from_blob(&data, dimension)?;
                loaded.index.push(pack(kind, target), vector.view())?;
            }
            loaded.through = id;
        }
        Ok(())
    }
}

/// One i64 per (kind, row id): the matrix keys its rows by it.
fn pack(kind: DocKind, id: i64) -> i64 {
    id.wrapping_mul(8).wrapping_add(kind.code() as i64)
}

fn unpack(key: i64) -> Option<(DocKind, i64)> {
    let kind = DocKind::from_code(key.rem_euclid(8) as u64)?;
    Some((kind, key.div_euclid(8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        for kind in DocKind::HITS {
            for id in [1, 7, 1 << 40] {
                assert_eq!(unpack(pack(kind, id)), Some((kind, id)));
            }
        }
    }
}
