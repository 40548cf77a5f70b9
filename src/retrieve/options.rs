//! What a search may return and how the channels are weighed.

use crate::error::{Error, Result};
use crate::index::schema::DocKind;
use crate::retrieve::HitKind;
use crate::retrieve::filter::Filter;
use crate::time::Timestamp;

/// How the ranked lists of the channels (BM25, graph, vectors) become one ranking.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Fusion {
    /// Reciprocal-rank fusion: a hit at rank `r` of a channel of weight `w` scores
    /// `w / (k + r)`; scores of different channels never meet, only ranks.
    ReciprocalRank {
        /// Dampens the head of every list (60 in the original paper).
        k: f32,
    },
    /// Weighted score sum: each channel's scores are divided by its best score, so every
    /// channel ranges over (0, 1], then weighted and summed. A channel whose scores sit in
    /// a narrow band (cosine similarities of 0.79 to 0.87) maps every candidate close to 1
    /// and barely ranks at all; [`Fusion::MinMax`] does not have that flaw.
    Score,
    /// Weighted score sum after min-max normalization of each channel over its
    /// candidates: the best maps to 1, the worst to 0, whatever band the raw scores sit in.
    MinMax,
}

/// Options for [`crate::Memory::search`].
///
/// ```
/// use cairn::{HitKind, SearchOptions, Timestamp};
/// let options = SearchOptions::new()
///     .limit(10)
///     .kinds(&[HitKind::Chunk, HitKind::Relation])
///     .depth(2)
///     .agent("mail-summarizer")
///     .valid_at(Timestamp::now())
///     .read_your_writes(true);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOptions {
    pub(crate) limit: usize,
    pub(crate) kinds: Vec<HitKind>,
    pub(crate) read_your_writes: bool,
    pub(crate) name_boost: f32,
    pub(crate) context_weight: f32,
    pub(crate) document_weight: f32,
    pub(crate) focus: f32,
    pub(crate) depth: u32,
    pub(crate) fan_out: usize,
    pub(crate) decay: f32,
    pub(crate) bm25_weight: f32,
    pub(crate) graph_weight: f32,
    pub(crate) vector_weight: f32,
    pub(crate) fusion: Fusion,
    pub(crate) filter: Filter,
    pub(crate) provenance: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions {
            limit: 10,
            kinds: Vec::new(),
            read_your_writes: false,
            name_boost: 2.0,
            context_weight: 0.4,
            document_weight: 0.3,
            focus: 1.0,
            depth: 2,
            fan_out: 16,
            decay: 0.5,
            bm25_weight: 1.0,
            graph_weight: 0.5,
            vector_weight: 0.2,
            fusion: Fusion::Score,
            filter: Filter::default(),
            provenance: false,
        }
    }
}

impl SearchOptions {
    /// The largest [`SearchOptions::limit`] a search accepts.
    pub const MAX_LIMIT: usize = 1_000;
    /// The largest [`SearchOptions::depth`] a search accepts. Each level beyond the
    /// first expands fewer entities (the beam halves), so deeper levels add little.
    pub const MAX_DEPTH: u32 = 16;
    /// The largest [`SearchOptions::fan_out`] a search accepts.
    pub const MAX_FAN_OUT: usize = 1_000;
    /// The longest query a search accepts, in bytes (64 KiB).
    pub const MAX_QUERY_BYTES: usize = 64 * 1024;

    /// Ten hits of every kind, graph depth 2, no waiting for the index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses options and queries whose work would not be bounded, naming the field:
    /// a limit over [`SearchOptions::MAX_LIMIT`], a depth over
    /// [`SearchOptions::MAX_DEPTH`], a fan-out over [`SearchOptions::MAX_FAN_OUT`],
    /// a query over [`SearchOptions::MAX_QUERY_BYTES`], and weights, decay or focus that
    /// are negative or not finite.
    pub(crate) fn validate(&self, query: &str) -> Result<()> {
        let over = |what: &'static str, value: u64, max: u64| -> Result<()> {
            if value > max {
                return Err(Error::invalid_input(
                    what,
                    format!("{value} is over the maximum of {max}"),
                ));
            }
            Ok(())
        };
        over("limit", self.limit as u64, Self::MAX_LIMIT as u64)?;
        over("depth", u64::from(self.depth), u64::from(Self::MAX_DEPTH))?;
        over("fan_out", self.fan_out as u64, Self::MAX_FAN_OUT as u64)?;
        over("query", query.len() as u64, Self::MAX_QUERY_BYTES as u64)?;
        for (what, value) in [
            ("name_boost", self.name_boost),
            ("context_weight", self.context_weight),
            ("document_weight", self.document_weight),
            ("focus", self.focus),
            ("decay", self.decay),
            ("bm25_weight", self.bm25_weight),
            ("graph_weight", self.graph_weight),
            ("vector_weight", self.vector_weight),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(Error::invalid_input(
                    what,
                    format!("{value} is not a finite number of at least 0"),
                ));
            }
        }
        if let Fusion::ReciprocalRank { k } = self.fusion
            && (!k.is_finite() || k < 0.0)
        {
            return Err(Error::invalid_input(
                "fusion",
                format!("reciprocal-rank k = {k} is not a finite number of at least 0"),
            ));
        }
        Ok(())
    }

    /// How many hits at most (default 10, at most [`SearchOptions::MAX_LIMIT`]).
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Only these kinds (empty: all).
    pub fn kinds(mut self, kinds: &[HitKind]) -> Self {
        self.kinds = kinds.to_vec();
        self
    }

    /// Wait until every write this process committed before the search is searchable
    /// (read-your-own-writes) by its words and names. Its mention links and vector are
    /// written just after, off this path (normally milliseconds, longer behind a model's
    /// backlog), so the graph step and the vector channel may not see it yet. Other
    /// processes' writes are not waited for: they become searchable as the index follows
    /// them. [`crate::Memory::sync`] waits for everyone's, derived rows included.
    pub fn read_your_writes(mut self, on: bool) -> Self {
        self.read_your_writes = on;
        self
    }

    /// How many relations away from the matched text the graph expansion goes
    /// (default 2, at most [`SearchOptions::MAX_DEPTH`]; 0 turns the graph channel off).
    pub fn depth(mut self, depth: u32) -> Self {
        self.depth = depth;
        self
    }

    /// At most this many relations are followed from any one entity (default 16), most
    /// mentioned first, so that hub entities do not flood the answer.
    pub fn fan_out(mut self, fan_out: usize) -> Self {
        self.fan_out = fan_out;
        self
    }

    /// Score factor per hop of graph expansion (default 0.5).
    pub fn decay(mut self, decay: f32) -> Self {
        self.decay = decay;
        self
    }

    /// Weight of the BM25 channel in the fusion (default 1; 0 turns it off, but its
    /// matches still seed the graph).
    pub fn bm25_weight(mut self, weight: f32) -> Self {
        self.bm25_weight = weight;
        self
    }

    /// Weight of the graph channel in the fusion (default 0.5, so that a direct match
    /// outranks what expansion reached at the same rank; 0 turns it off).
    pub fn graph_weight(mut self, weight: f32) -> Self {
        self.graph_weight = weight;
        self
    }

    /// Weight of the vector channel (default 0.2; 0 turns it off). Only a memory opened
    /// with [`crate::Options::embedder`] has one. On LoCoMo the model-free
    /// [`crate::HashingEmbedder`] adds nothing that stemmed BM25 does not already find, so
    /// its default weight is low; a real model deserves a higher one.
    pub fn vector_weight(mut self, weight: f32) -> Self {
        self.vector_weight = weight;
        self
    }

    /// How the channels are combined (default [`Fusion::Score`], which beat reciprocal rank
    /// at every weight measured; see `docs/retrieval.md`).
    pub fn fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }

    /// How much more a match in a name counts than a match in text (default 2).
    pub fn name_boost(mut self, boost: f32) -> Self {
        self.name_boost = boost;
        self
    }

    /// Weight of a chunk's context — the text of the two chunks before and after it in
    /// its document — relative to its own text (default 0.4; 0 ignores context).
    pub fn context_weight(mut self, weight: f32) -> Self {
        self.context_weight = weight;
        self
    }

    /// How much a chunk gains from how well its whole document matches (default 0.3 of
    /// the best match's score, for the best-matching document; 0 turns it off).
    pub fn document_weight(mut self, weight: f32) -> Self {
        self.document_weight = weight;
        self
    }

    /// Hits about an entity the query names (by any alias) score `1 + focus` times as
    /// much (default 1, i.e. double; 0 turns it off).
    pub fn focus(mut self, focus: f32) -> Self {
        self.focus = focus;
        self
    }

    /// Plain BM25: no context, document score, focus, graph or vectors.
    pub fn bm25_only(self) -> Self {
        self.context_weight(0.0)
            .document_weight(0.0)
            .focus(0.0)
            .depth(0)
            .vector_weight(0.0)
    }

    /// Only hits written under an episode of `agent` (see [`crate::Episode`]).
    pub fn agent(mut self, agent: &str) -> Self {
        self.filter.agent = Some(agent.to_owned());
        self
    }

    /// Only hits written in `[since, until)` (a relation: when it was first stated).
    pub fn written_between(mut self, since: Timestamp, until: Timestamp) -> Self {
        self.filter.since = Some(since);
        self.filter.until = Some(until);
        self
    }

    /// Only relations valid at `at` (`valid_from <= at < valid_to`, open ends unbounded);
    /// hits of other kinds are not affected.
    pub fn valid_at(mut self, at: Timestamp) -> Self {
        self.filter.valid_at = Some(at);
        self
    }

    /// Also return relations whose validity has ended (`valid_to` in the past, e.g.
    /// through [`crate::Memory::invalidate`]), each marked with its interval, as in
    /// `Ann works at Acme (until 2026-01-05)` (default `false`: they are left out, so
    /// search and context show only what holds now). [`valid_at`](Self::valid_at), when
    /// set, decides instead.
    pub fn include_history(mut self, on: bool) -> Self {
        self.filter.history = on;
        self
    }

    /// Start each line of a [`crate::Memory::context`] with who wrote it and when, as in
    /// `[mail-agent, 2026-11-30] Acme Corp acquired Widget Inc` (the agent of its
    /// episode, omitted outside one, and the UTC date it was written or, for a relation,
    /// first stated). Default `false`. Search hits' texts are not affected.
    pub fn provenance(mut self, on: bool) -> Self {
        self.provenance = on;
        self
    }

    pub(crate) fn doc_kinds(&self) -> Vec<DocKind> {
        self.kinds.iter().map(|k| k.doc_kind()).collect()
    }
}
