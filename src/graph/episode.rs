//! Provenance: who wrote, from what, when.

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};
use crate::graph::batch::BatchReport;
use crate::graph::input::check_label;
use crate::id::EpisodeId;
use crate::time::Timestamp;

/// The longest agent id or source accepted, in bytes.
const MAX_LABEL_BYTES: usize = 1024;
/// The largest metadata document accepted, in bytes of JSON.
const MAX_METADATA_BYTES: usize = 64 * 1024;

/// Describes where a group of writes came from. Record it with
/// [`crate::Memory::episode`]; every write made through the returned handle points to it.
///
/// ```
/// use cairn::Episode;
/// let episode = Episode::new("mail-agent")
///     .source("imap://inbox/4711")
///     .metadata(serde_json::json!({ "message_id": "<4711@example.com>" }));
/// # let _ = episode;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    agent: String,
    source: Option<String>,
    at: Option<Timestamp>,
    metadata: Option<serde_json::Value>,
    idempotency_key: Option<String>,
}

impl Episode {
    /// An episode written by `agent` (any stable id the caller uses for it).
    pub fn new(agent: impl Into<String>) -> Self {
        Episode {
            agent: agent.into(),
            source: None,
            at: None,
            metadata: None,
            idempotency_key: None,
        }
    }

    /// What the knowledge was extracted from (a message id, a URL, a file...).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// When the source event happened; defaults to the time the episode is recorded.
    pub fn at(mut self, at: Timestamp) -> Self {
        self.at = Some(at);
        self
    }

    /// Free-form caller metadata, stored as JSON.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = Some(metadata);
        self
    }

    /// A key, chosen by the agent, that names this episode's write for good: an
    /// episode of the same agent with the same key is recorded once, and
    /// [`crate::Memory::record`] applies its batch once, however often it is repeated (for
    /// instance after [`Error::OutcomeUnknown`]). A message id or a hash of the source
    /// makes a good key.
    ///
    /// ```
    /// # let memory = cairn::Memory::ephemeral()?;
    /// let episode = cairn::Episode::new("mail-agent").idempotency_key("msg-4711");
    /// let first = memory.episode(&episode)?;
    /// let again = memory.episode(&episode)?;
    /// assert_eq!(first.current_episode(), again.current_episode());
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// Whether the caller gave the episode an idempotency key.
    pub(crate) fn has_idempotency_key(&self) -> bool {
        self.idempotency_key.is_some()
    }

    /// Checks the episode and renders its metadata, before any lock is taken.
    pub(crate) fn validate(&self) -> Result<ValidEpisode<'_>> {
        check_label("agent id", &self.agent, MAX_LABEL_BYTES)?;
        if self.agent.trim().is_empty() {
            return Err(Error::invalid_input("agent id", "it is empty"));
        }
        if let Some(source) = &self.source {
            check_label("episode source", source, MAX_LABEL_BYTES)?;
        }
        if let Some(key) = &self.idempotency_key {
            check_label("idempotency key", key, MAX_LABEL_BYTES)?;
            if key.trim().is_empty() {
                return Err(Error::invalid_input("idempotency key", "it is empty"));
            }
        }
        let metadata = match &self.metadata {
            None => None,
            Some(value) => {
                let text = serde_json::to_string(value)
                    .map_err(|e| Error::invalid_input("episode metadata", e.to_string()))?;
                if text.len() > MAX_METADATA_BYTES {
                    return Err(Error::invalid_input(
                        "episode metadata",
                        format!(
                            "{} bytes of JSON; the limit is {MAX_METADATA_BYTES}",
                            text.len()
                        ),
                    ));
                }
                Some(text)
            }
        };
        Ok(ValidEpisode {
            episode: self,
            metadata,
        })
    }
}

pub(crate) struct ValidEpisode<'a> {
    episode: &'a Episode,
    metadata: Option<String>,
}

/// A recorded episode, as read back.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EpisodeInfo {
    /// Its id.
    pub id: EpisodeId,
    /// The agent that wrote it.
    pub agent: Option<String>,
    /// What it was extracted from.
    pub source: Option<String>,
    /// When the source event happened.
    pub at: Timestamp,
    /// Caller metadata (JSON text).
    pub metadata: Option<String>,
    /// When cairn recorded it.
    pub created_at: Timestamp,
    /// The agent's idempotency key, if it gave one.
    pub idempotency_key: Option<String>,
}

/// What [`crate::Memory::record`] did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Recorded {
    /// The episode the batch was written under.
    pub episode: EpisodeId,
    /// What the batch wrote (for a replay: what the first call wrote).
    pub report: BatchReport,
    /// True when the key was found and nothing was written by this call.
    pub replayed: bool,
}

pub(crate) fn insert(conn: &Connection, episode: &ValidEpisode<'_>) -> Result<EpisodeId> {
    let now = Timestamp::now();
    let e = episode.episode;
    let id = conn
        .prepare_cached(
            "INSERT INTO episode(agent, source, at, metadata, created_at, idempotency_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
        )?
        .query_row(
            params![
                e.agent,
                e.source,
                e.at.unwrap_or(now),
                episode.metadata,
                now,
                e.idempotency_key
            ],
            |r| r.get(0),
        )?;
    Ok(id)
}

/// An episode recorded earlier under the same agent and idempotency key, with the outcome
/// of its batch if [`crate::Memory::record`] wrote one. `None` for an episode without a
/// key.
pub(crate) fn find_keyed(
    conn: &Connection,
    episode: &ValidEpisode<'_>,
) -> Result<Option<(EpisodeId, Option<BatchReport>)>> {
    let e = episode.episode;
    let Some(key) = &e.idempotency_key else {
        return Ok(None);
    };
    let found: Option<(EpisodeId, Option<String>)> = conn
        .prepare_cached(
            "SELECT id, outcome FROM episode WHERE agent = ?1 AND idempotency_key = ?2",
        )?
        .query_row(params![e.agent, key], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((id, outcome)) = found else {
        return Ok(None);
    };
    let report = outcome
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|err| Error::invalid_input("episode outcome", format!("episode {id}: {err}")))?;
    Ok(Some((id, report)))
}

/// The episode with this key if there is one, else a new one.
pub(crate) fn find_or_insert(conn: &Connection, episode: &ValidEpisode<'_>) -> Result<EpisodeId> {
    match find_keyed(conn, episode)? {
        Some((id, _)) => Ok(id),
        None => insert(conn, episode),
    }
}

/// Stores what an idempotent batch wrote, in the batch's own transaction.
pub(crate) fn set_outcome(conn: &Connection, id: EpisodeId, report: &BatchReport) -> Result<()> {
    let text = serde_json::to_string(report)
        .map_err(|e| Error::invalid_input("episode outcome", e.to_string()))?;
    conn.prepare_cached("UPDATE episode SET outcome = ?2 WHERE id = ?1")?
        .execute(params![id, text])?;
    Ok(())
}

/// True when the episode has an idempotency key (its batch outcome is worth storing).
pub(crate) fn is_keyed(episode: &ValidEpisode<'_>) -> bool {
    episode.episode.idempotency_key.is_some()
}

const COLUMNS: &str = "id, agent, source, at, metadata, created_at, idempotency_key";

fn from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<EpisodeInfo> {
    Ok(EpisodeInfo {
        id: row.get(0)?,
        agent: row.get(1)?,
        source: row.get(2)?,
        at: row.get(3)?,
        metadata: row.get(4)?,
        created_at: row.get(5)?,
        idempotency_key: row.get(6)?,
    })
}

pub(crate) fn get(conn: &Connection, id: EpisodeId) -> Result<Option<EpisodeInfo>> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM episode WHERE id = ?1"))?;
    Ok(stmt.query_row([id], from_row).optional()?)
}

pub(crate) fn by_agent(conn: &Connection, agent: &str) -> Result<Vec<EpisodeInfo>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM episode WHERE agent = ?1 ORDER BY at, id"
    ))?;
    let rows = stmt.query_map([agent], from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
