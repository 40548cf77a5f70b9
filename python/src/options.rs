//! Keyword arguments → the library's `Options` and `SearchOptions`.

use std::time::Duration;

use pyo3::prelude::*;

use cairn::{CheckpointPolicy, ConnectionMode, Durability, Options, SearchOptions, Timestamp};

use crate::convert::{hit_kinds, timestamp_opt};
use crate::embed::embedder_of;
use crate::errors::invalid;

/// How a memory is opened; every field is a keyword argument of `Memory(...)`,
/// `Memory.ephemeral(...)` and `Tenants(...)`.
pub(crate) struct OpenArgs<'a, 'py> {
    pub(crate) durability: &'a str,
    pub(crate) busy_timeout: f64,
    pub(crate) read_only: bool,
    pub(crate) pool_size: Option<u32>,
    pub(crate) checkpoint_policy: Option<&'a str>,
    pub(crate) embedder: Option<&'a Bound<'py, PyAny>>,
}

impl OpenArgs<'_, '_> {
    /// The library's options, or `InvalidInputError` naming the bad argument.
    pub(crate) fn options(&self, py: Python<'_>) -> PyResult<Options> {
        let durability = match self.durability {
            "normal" => Durability::Normal,
            "full" => Durability::Full,
            other => {
                return Err(invalid(
                    py,
                    "durability",
                    format!("{other:?} is not \"normal\" or \"full\""),
                ));
            }
        };
        if !(self.busy_timeout.is_finite() && self.busy_timeout >= 0.0) {
            return Err(invalid(py, "busy_timeout", "expected seconds >= 0"));
        }
        let mut options = Options::new()
            .durability(durability)
            .busy_timeout(Duration::from_secs_f64(self.busy_timeout.min(86_400.0)))
            .read_only(self.read_only);
        if let Some(size) = self.pool_size {
            if size == 0 {
                return Err(invalid(
                    py,
                    "pool_size",
                    "a pool needs at least 1 connection",
                ));
            }
            options = options.connection_mode(ConnectionMode::Pool { size });
        }
        if let Some(name) = self.checkpoint_policy {
            let policy = CheckpointPolicy::from_name(name).ok_or_else(|| {
                invalid(
                    py,
                    "checkpoint_policy",
                    format!("{name:?} is not \"standalone\" or \"replicated\""),
                )
            })?;
            options = options.checkpoint_policy(policy);
        }
        if let Some(embedder) = self.embedder {
            options = options.embedder(embedder_of(embedder)?);
        }
        Ok(options)
    }
}

/// The filters and knobs of `Memory.search` and `Memory.context`.
pub(crate) struct SearchArgs<'a, 'py> {
    pub(crate) limit: usize,
    pub(crate) kinds: Option<Vec<String>>,
    pub(crate) agent: Option<&'a str>,
    pub(crate) since: Option<&'a Bound<'py, PyAny>>,
    pub(crate) until: Option<&'a Bound<'py, PyAny>>,
    pub(crate) valid_at: Option<&'a Bound<'py, PyAny>>,
    pub(crate) include_history: bool,
    pub(crate) read_your_writes: bool,
    pub(crate) depth: Option<u32>,
    pub(crate) bm25_only: bool,
}

impl SearchArgs<'_, '_> {
    /// The library's search options (limits are checked by the library, which names
    /// the field).
    pub(crate) fn options(&self, py: Python<'_>) -> PyResult<SearchOptions> {
        let mut options = SearchOptions::new();
        if self.bm25_only {
            options = options.bm25_only();
        }
        options = options
            .limit(self.limit)
            .include_history(self.include_history)
            .read_your_writes(self.read_your_writes);
        if let Some(kinds) = &self.kinds {
            options = options.kinds(&hit_kinds(py, kinds)?);
        }
        if let Some(agent) = self.agent {
            options = options.agent(agent);
        }
        let since = timestamp_opt(self.since, "since")?;
        let until = timestamp_opt(self.until, "until")?;
        if since.is_some() || until.is_some() {
            // An open end of the window is the beginning or the end of time.
            options = options.written_between(
                since.unwrap_or(Timestamp::from_millis(i64::MIN)),
                until.unwrap_or(Timestamp::from_millis(i64::MAX)),
            );
        }
        if let Some(at) = timestamp_opt(self.valid_at, "valid_at")? {
            options = options.valid_at(at);
        }
        if let Some(depth) = self.depth {
            options = options.depth(depth);
        }
        Ok(options)
    }
}
