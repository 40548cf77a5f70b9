//! The memory graph: entities and their aliases, relations, observations, episodes and
//! the change log. Every function here takes a `&Connection` that the caller
//! ([`crate::Memory`]) obtained from [`crate::db::Db`]; none of them opens a transaction.

pub(crate) mod batch;
pub(crate) mod change;
pub(crate) mod chunker;
pub(crate) mod document;
pub(crate) mod entity;
pub(crate) mod episode;
pub(crate) mod input;
pub(crate) mod mention;
pub(crate) mod observation;
pub(crate) mod relation;
pub(crate) mod stats;

use crate::id::EpisodeId;
use crate::time::Timestamp;

/// What every mutation in one call shares: when it happened and on whose behalf.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteCtx {
    pub(crate) at: Timestamp,
    pub(crate) episode: Option<EpisodeId>,
}

impl WriteCtx {
    pub(crate) fn new(episode: Option<EpisodeId>) -> Self {
        WriteCtx {
            at: Timestamp::now(),
            episode,
        }
    }
}
