//! The kinds of things cairn indexes and returns: a leaf module every layer may import
//! (it imports nothing of cairn's), so that `Options` and the index name kinds without
//! depending on each other.

/// What a search-index document stands for. `Document` is not a search hit: one
/// index document per stored document, holding all its text, scores whole documents so
/// their chunks can be ranked by the document they belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum DocKind {
    Entity,
    Relation,
    Observation,
    Chunk,
    Document,
}

impl DocKind {
    /// The kinds a search returns.
    pub(crate) const HITS: [DocKind; 4] = [
        DocKind::Entity,
        DocKind::Relation,
        DocKind::Observation,
        DocKind::Chunk,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DocKind::Entity => "entity",
            DocKind::Relation => "relation",
            DocKind::Observation => "observation",
            DocKind::Chunk => "chunk",
            DocKind::Document => "document",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<DocKind> {
        Self::all().find(|k| k.as_str() == s)
    }

    /// A small stable number, for the `kind_code` fast field.
    pub(crate) fn code(self) -> u64 {
        self as u64
    }

    pub(crate) fn from_code(code: u64) -> Option<DocKind> {
        Self::all().find(|k| k.code() == code)
    }

    pub(crate) fn all() -> impl Iterator<Item = DocKind> {
        DocKind::HITS.into_iter().chain([DocKind::Document])
    }
}

/// Which kinds of hits a search may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HitKind {
    /// Entities.
    Entity,
    /// Relations.
    Relation,
    /// Observations.
    Observation,
    /// Chunks.
    Chunk,
}

impl HitKind {
    pub(crate) fn doc_kind(self) -> DocKind {
        match self {
            HitKind::Entity => DocKind::Entity,
            HitKind::Relation => DocKind::Relation,
            HitKind::Observation => DocKind::Observation,
            HitKind::Chunk => DocKind::Chunk,
        }
    }
}
