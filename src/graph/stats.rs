//! Row counts of a memory.

use rusqlite::Connection;

use crate::error::Result;

/// How much a memory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Stats {
    /// Entities.
    pub entities: u64,
    /// Aliases (every entity has at least one: its own name).
    pub aliases: u64,
    /// Relations (distinct triples).
    pub relations: u64,
    /// Observations.
    pub observations: u64,
    /// Episodes.
    pub episodes: u64,
    /// Change-log rows.
    pub changes: u64,
    /// Documents.
    pub documents: u64,
    /// Chunks of documents.
    pub chunks: u64,
}

pub(crate) fn read(conn: &Connection) -> Result<Stats> {
    let count = |table: &str| -> Result<u64> {
        let n: i64 = conn
            .prepare_cached(&format!("SELECT count(*) FROM {table}"))?
            .query_row([], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    };
    Ok(Stats {
        entities: count("entity")?,
        aliases: count("alias")?,
        relations: count("relation")?,
        observations: count("observation")?,
        episodes: count("episode")?,
        changes: count("change")?,
        documents: count("document")?,
        chunks: count("chunk")?,
    })
}
