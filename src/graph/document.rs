//! Documents and their chunks: long text split into retrievable pieces, or pre-split
//! units (a chat turn, a tool result) stored as they are.

use std::borrow::Cow;

use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::error::{Error, Result};
use crate::graph::WriteCtx;
use crate::graph::change::{self, ChangeOp};
use crate::graph::chunker::{self, ChunkOptions, Piece};
use crate::graph::entity;
use crate::graph::input::{EntityRef, ValidRef, check_text};
use crate::id::{ChunkId, DocumentId, EpisodeId};
use crate::time::Timestamp;

/// Longest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
/// Largest caller metadata accepted per document or unit, in bytes of JSON.
const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Longest source label accepted, in bytes.
const MAX_SOURCE_BYTES: usize = 1024;

/// A text to store, with where it came from.
///
/// ```
/// # let memory = cairn::Memory::ephemeral()?;
/// let doc = cairn::Document::new("Acme Corp acquired Widget Inc. The deal closed in May.")
///     .source("news/2026-05-02")
///     .metadata(serde_json::json!({ "url": "https://example.com/acme" }));
/// let (id, chunks) = memory.add_document(&doc)?;
/// assert_eq!(memory.chunks(id)?.len(), chunks.len());
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Document<'a> {
    text: Cow<'a, str>,
    source: Option<String>,
    metadata: Option<serde_json::Value>,
    options: ChunkOptions,
    about: Option<EntityRef<'a>>,
}

impl<'a> Document<'a> {
    /// A document with this text, split with the default [`ChunkOptions`].
    pub fn new(text: impl Into<Cow<'a, str>>) -> Self {
        Document {
            text: text.into(),
            source: None,
            metadata: None,
            options: ChunkOptions::default(),
            about: None,
        }
    }

    /// Where it came from (a file, a URL, a conversation id...).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Caller metadata stored with the document (JSON).
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// How to split it.
    pub fn chunking(mut self, options: ChunkOptions) -> Self {
        self.options = options;
        self
    }

    /// The entity the document is about (found or created by name), when the caller
    /// knows it: an article's title, a customer file's customer. Search follows it from
    /// a passage that names the entity to this document's chunks.
    pub fn about(mut self, entity: impl Into<EntityRef<'a>>) -> Self {
        self.about = Some(entity.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<ValidDocument> {
        check_text("document", &self.text, MAX_DOCUMENT_BYTES)?;
        self.options.validate()?;
        let pieces = chunker::split(&self.text, &self.options);
        if pieces.is_empty() {
            return Err(Error::invalid_input("document", "the text is empty"));
        }
        Ok(ValidDocument {
            source: valid_source(self.source.as_deref())?,
            metadata: metadata_json("document metadata", self.metadata.as_ref())?,
            about: self.about.as_ref().map(ValidRef::new).transpose()?,
            chars: self.text.chars().count(),
            chunks: pieces
                .into_iter()
                .map(|p| ValidChunk {
                    // A Markdown chunk's heading path; plain text has none.
                    metadata: (!p.headings.is_empty())
                        .then(|| serde_json::json!({ "headings": p.headings }).to_string()),
                    piece: p,
                })
                .collect(),
        })
    }
}

/// A pre-split unit of text (a chat turn, a tool result) stored as one chunk.
///
/// ```
/// # let memory = cairn::Memory::ephemeral()?;
/// let turns = [
///     cairn::Unit::new("Ann: I moved to Zürich last week.").metadata(serde_json::json!({"id": "D1:1"})),
///     cairn::Unit::new("Bob: How do you like it?").metadata(serde_json::json!({"id": "D1:2"})),
/// ];
/// let (_doc, chunks) = memory.add_units("session-1", &turns)?;
/// assert_eq!(chunks.len(), 2);
/// # Ok::<(), cairn::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Unit<'a> {
    text: Cow<'a, str>,
    metadata: Option<serde_json::Value>,
}

impl<'a> Unit<'a> {
    /// A unit with this text.
    pub fn new(text: impl Into<Cow<'a, str>>) -> Self {
        Unit {
            text: text.into(),
            metadata: None,
        }
    }

    /// Caller metadata (e.g. a message id), stored with the chunk.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }
}

/// Checks pre-split units; they become the chunks of one document, in order, with
/// character spans into the units joined by blank lines.
pub(crate) fn validate_units(source: &str, units: &[Unit<'_>]) -> Result<ValidDocument> {
    if units.is_empty() {
        return Err(Error::invalid_input("units", "there are none"));
    }
    let mut chunks = Vec::with_capacity(units.len());
    let mut offset = 0;
    for (index, unit) in units.iter().enumerate() {
        let item = |e: Error| Error::InvalidBatchItem {
            index,
            source: Box::new(e),
        };
        let text = unit.text.trim();
        if text.is_empty() {
            return Err(item(Error::invalid_input("unit", "the text is empty")));
        }
        check_text("unit", text, MAX_DOCUMENT_BYTES).map_err(item)?;
        let len = text.chars().count();
        chunks.push(ValidChunk {
            piece: Piece {
                text: text.to_owned(),
                start: offset,
                end: offset + len,
                headings: Vec::new(),
            },
            metadata: metadata_json("unit metadata", unit.metadata.as_ref()).map_err(item)?,
        });
        offset += len + 2;
    }
    Ok(ValidDocument {
        source: valid_source(Some(source))?,
        metadata: None,
        about: None,
        chars: offset.saturating_sub(2),
        chunks,
    })
}

fn valid_source(source: Option<&str>) -> Result<Option<String>> {
    match source {
        None => Ok(None),
        Some(s) => {
            check_text("document source", s, MAX_SOURCE_BYTES)?;
            Ok(Some(s.to_owned()))
        }
    }
}

fn metadata_json(what: &'static str, value: Option<&serde_json::Value>) -> Result<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let text =
        serde_json::to_string(value).map_err(|e| Error::invalid_input(what, e.to_string()))?;
    check_text(what, &text, MAX_METADATA_BYTES)?;
    Ok(Some(text))
}

pub(crate) struct ValidDocument {
    source: Option<String>,
    metadata: Option<String>,
    about: Option<ValidRef>,
    chars: usize,
    chunks: Vec<ValidChunk>,
}

struct ValidChunk {
    piece: Piece,
    metadata: Option<String>,
}

/// A stored chunk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Chunk {
    /// Its id.
    pub id: ChunkId,
    /// The document it belongs to.
    pub document: DocumentId,
    /// Its position in the document (0-based).
    pub ord: i64,
    /// Its text.
    pub text: String,
    /// Character offset of its start in the document.
    pub start: i64,
    /// Character offset just past its end.
    pub end: i64,
    /// Caller metadata (JSON text), for units; for a document split as Markdown (see
    /// [`crate::ChunkOptions::markdown`]), `{"headings": [...]}`, the chunk's heading path.
    pub metadata: Option<String>,
    /// When it was stored.
    pub created_at: Timestamp,
    /// The episode that stored it.
    pub episode: Option<EpisodeId>,
}

pub(crate) fn insert(
    conn: &Connection,
    doc: &ValidDocument,
    ctx: &WriteCtx,
) -> Result<(DocumentId, Vec<ChunkId>)> {
    let about = doc
        .about
        .as_ref()
        .map(|r| entity::resolve_ref(conn, r, ctx))
        .transpose()?;
    conn.prepare_cached(
        "INSERT INTO document(source, metadata, chars, created_at, episode_id, about_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        doc.source,
        doc.metadata,
        doc.chars as i64,
        ctx.at,
        ctx.episode,
        about
    ])?;
    let id = DocumentId::from_raw(conn.last_insert_rowid());
    let mut stmt = conn.prepare_cached(
        "INSERT INTO chunk(document_id, ord, text, start, end, metadata, created_at, episode_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut chunks = Vec::with_capacity(doc.chunks.len());
    for (ord, chunk) in doc.chunks.iter().enumerate() {
        let p = &chunk.piece;
        stmt.execute(params![
            id,
            ord as i64,
            p.text,
            p.start as i64,
            p.end as i64,
            chunk.metadata,
            ctx.at,
            ctx.episode
        ])?;
        let chunk_id = ChunkId::from_raw(conn.last_insert_rowid());
        change::log(conn, ctx, ChangeOp::ChunkAdded, chunk_id.get(), None)?;
        chunks.push(chunk_id);
    }
    Ok((id, chunks))
}

const COLUMNS: &str = "id, document_id, ord, text, start, end, metadata, created_at, episode_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Chunk> {
    Ok(Chunk {
        id: r.get(0)?,
        document: r.get(1)?,
        ord: r.get(2)?,
        text: r.get(3)?,
        start: r.get(4)?,
        end: r.get(5)?,
        metadata: r.get(6)?,
        created_at: r.get(7)?,
        episode: r.get(8)?,
    })
}

pub(crate) fn chunk(conn: &Connection, id: ChunkId) -> Result<Option<Chunk>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM chunk WHERE id = ?1"))?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

pub(crate) fn chunks(conn: &Connection, document: DocumentId) -> Result<Vec<Chunk>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM chunk WHERE document_id = ?1 ORDER BY ord"
    ))?;
    let rows = stmt.query_map([document], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Deletes a document and its chunks (logging each chunk's removal). False if absent.
pub(crate) fn delete(conn: &Connection, id: DocumentId, ctx: &WriteCtx) -> Result<bool> {
    let chunks: Vec<i64> = conn
        .prepare_cached("SELECT id FROM chunk WHERE document_id = ?1 ORDER BY ord")?
        .query_map([id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // The document's id rides along: once the rows are gone, the indexer could not
    // otherwise tell which document's index entry to drop.
    let detail = serde_json::json!({ "document": id }).to_string();
    for chunk in chunks {
        change::log(conn, ctx, ChangeOp::ChunkRemoved, chunk, Some(&detail))?;
    }
    Ok(conn
        .prepare_cached("DELETE FROM document WHERE id = ?1")?
        .execute([id])?
        > 0)
}
