//! Turning change-log rows into index updates: for every row a change touched, delete its
//! index document by key and add its current state (if it still exists). Applying the
//! same changes twice gives the same index, so a crash between a tantivy commit and the
//! next one only means some changes are applied again.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension};
use tantivy::{IndexWriter, TantivyDocument};

use crate::error::Result;
use crate::graph::change::{Change, ChangeOp};
use crate::index::schema::{DocKind, Fields, key_term};
use crate::normalize::fold_text;

/// Which index documents `changes` touched, deduplicated.
pub(crate) fn touched(conn: &Connection, changes: &[Change]) -> Result<BTreeSet<(DocKind, i64)>> {
    let mut out = BTreeSet::new();
    for change in changes {
        let kind = match change.op {
            ChangeOp::EntityCreated
            | ChangeOp::EntityUpdated
            | ChangeOp::AliasAdded
            | ChangeOp::EntityMerged
            | ChangeOp::EntityDeleted => DocKind::Entity,
            ChangeOp::EntityRenamed => {
                // Relation and observation documents carry the entity's name.
                for (kind, id) in documents_naming(conn, change.target)? {
                    out.insert((kind, id));
                }
                DocKind::Entity
            }
            ChangeOp::RelationCreated | ChangeOp::RelationUpdated | ChangeOp::RelationRemoved => {
                DocKind::Relation
            }
            // A repeated assertion changes no text.
            ChangeOp::RelationMentioned => continue,
            ChangeOp::ObservationAdded
            | ChangeOp::ObservationMoved
            | ChangeOp::ObservationRemoved => DocKind::Observation,
            ChangeOp::ChunkAdded => {
                if let Some(document) = document_of(conn, change.target)? {
                    out.insert((DocKind::Document, document));
                }
                DocKind::Chunk
            }
            ChangeOp::ChunkRemoved => {
                if let Some(document) = removed_from(change) {
                    out.insert((DocKind::Document, document));
                }
                DocKind::Chunk
            }
        };
        out.insert((kind, change.target));
    }
    Ok(out)
}

fn document_of(conn: &Connection, chunk: i64) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT document_id FROM chunk WHERE id = ?1")?
        .query_row([chunk], |r| r.get(0))
        .optional()?)
}

fn removed_from(change: &Change) -> Option<i64> {
    let detail: serde_json::Value = serde_json::from_str(change.detail.as_deref()?).ok()?;
    detail.get("document")?.as_i64()
}

fn documents_naming(conn: &Connection, entity: i64) -> Result<Vec<(DocKind, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT 'relation', id FROM relation WHERE subject_id = ?1 OR object_id = ?1
         UNION ALL SELECT 'observation', id FROM observation WHERE entity_id = ?1",
    )?;
    let rows = stmt.query_map([entity], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (kind, id) = row?;
        if let Some(kind) = DocKind::parse(&kind) {
            out.push((kind, id));
        }
    }
    Ok(out)
}

/// Deletes and re-adds every touched document.
pub(crate) fn apply(
    conn: &Connection,
    writer: &IndexWriter,
    fields: &Fields,
    touched: &BTreeSet<(DocKind, i64)>,
) -> Result<()> {
    for &(kind, id) in touched {
        writer.delete_term(key_term(fields, kind, id));
        if let Some(doc) = document(conn, fields, kind, id)? {
            writer.add_document(doc)?;
        }
    }
    Ok(())
}

/// The index document of one row, or `None` if the row no longer exists.
fn document(
    conn: &Connection,
    fields: &Fields,
    kind: DocKind,
    id: i64,
) -> Result<Option<TantivyDocument>> {
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.key, format!("{}:{id}", kind.as_str()));
    doc.add_text(fields.kind, kind.as_str());
    doc.add_u64(fields.kind_code, kind.code());
    doc.add_i64(fields.id, id);
    let Some(text_fields) = fields.of(kind) else {
        let Some(text) = document_text(conn, id)? else {
            return Ok(None);
        };
        doc.add_i64(fields.document, id);
        doc.add_text(fields.whole, fold_text(&text));
        return Ok(Some(doc));
    };
    let (name, body) = if kind == DocKind::Chunk {
        let Some((document, ord, text)) = chunk_row(conn, id)? else {
            return Ok(None);
        };
        doc.add_i64(fields.document, document);
        if let Some(context) = text_fields.context {
            doc.add_text(context, fold_text(&neighbours(conn, document, ord)?));
        }
        (String::new(), fold_text(&text))
    } else {
        let Some((name, body)) = texts(conn, kind, id)? else {
            return Ok(None);
        };
        (fold_text(&name), fold_text(&body))
    };
    if let Some(field) = text_fields.name {
        doc.add_text(field, &name);
    }
    doc.add_text(text_fields.body, &body);
    doc.add_text(text_fields.stop, format!("{name}\n{body}"));
    Ok(Some(doc))
}

/// How many chunks on each side of a chunk make its context.
const CONTEXT_WINDOW: i64 = 2;

fn chunk_row(conn: &Connection, id: i64) -> Result<Option<(i64, i64, String)>> {
    Ok(conn
        .prepare_cached("SELECT document_id, ord, text FROM chunk WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?)
}

fn neighbours(conn: &Connection, document: i64, ord: i64) -> Result<String> {
    let text: Option<String> = conn
        .prepare_cached(
            "SELECT group_concat(text, char(10)) FROM (
                SELECT text FROM chunk WHERE document_id = ?1 AND ord BETWEEN ?2 AND ?3 AND ord != ?4
                ORDER BY ord)",
        )?
        .query_row(
            rusqlite::params![document, ord - CONTEXT_WINDOW, ord + CONTEXT_WINDOW, ord],
            |r| r.get(0),
        )?;
    Ok(text.unwrap_or_default())
}

fn document_text(conn: &Connection, id: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT (SELECT group_concat(text, char(10)) FROM
                        (SELECT text FROM chunk WHERE document_id = d.id ORDER BY ord))
             FROM document d WHERE d.id = ?1",
        )?
        .query_row([id], |r| {
            Ok(r.get::<_, Option<String>>(0)?.unwrap_or_default())
        })
        .optional()?)
}

/// The text one row is embedded from: its names, then its text.
pub(crate) fn embedding_text(conn: &Connection, kind: DocKind, id: i64) -> Result<Option<String>> {
    Ok(texts(conn, kind, id)?.map(|(name, body)| {
        if name.is_empty() {
            body
        } else {
            format!("{name}\n{body}")
        }
    }))
}

/// A row's (name, body) texts as the index sees them, or `None` if it no longer exists.
fn texts(conn: &Connection, kind: DocKind, id: i64) -> Result<Option<(String, String)>> {
    let sql = match kind {
        DocKind::Entity => {
            "SELECT (SELECT group_concat(name, char(10)) FROM alias WHERE entity_id = e.id),
                    concat_ws(char(10), e.kind, e.summary)
             FROM entity e WHERE e.id = ?1"
        }
        DocKind::Relation => {
            "SELECT s.name || char(10) || o.name, r.predicate
             FROM relation r JOIN entity s ON s.id = r.subject_id JOIN entity o ON o.id = r.object_id
             WHERE r.id = ?1"
        }
        DocKind::Observation => {
            "SELECT e.name, o.text FROM observation o JOIN entity e ON e.id = o.entity_id WHERE o.id = ?1"
        }
        DocKind::Chunk => "SELECT '', text FROM chunk WHERE id = ?1",
        DocKind::Document => return Ok(document_text(conn, id)?.map(|t| (String::new(), t))),
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row([id], |r| {
            Ok((
                r.get::<_, Option<String>>(0)?.unwrap_or_default(),
                r.get(1)?,
            ))
        })
        .optional()?)
}
