//! The tantivy schema of the derived search index, and its English analyzer.

use tantivy::schema::{
    FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, Term};

use crate::normalize::fold_text;

/// Names the schema and analyzer; stored in every commit payload. Change it whenever the
/// fields or the analyzer change, and every index built before is rebuilt on open.
/// v2: text is folded like names (NFKC, case folding) before the analyzer sees it.
pub(crate) const SCHEMA_TAG: &str = "cairn-index-v2";

const ANALYZER: &str = "cairn_en";

/// What a search-index document stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum DocKind {
    Entity,
    Relation,
    Observation,
    Chunk,
}

impl DocKind {
    pub(crate) const ALL: [DocKind; 4] = [
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
        }
    }

    pub(crate) fn parse(s: &str) -> Option<DocKind> {
        DocKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The fields, resolved once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// `<kind>:<id>`, the unit of delete-then-add.
    pub(crate) key: Field,
    pub(crate) kind: Field,
    pub(crate) id: Field,
    /// Entity names and aliases; the ends of a relation; an observation's entity.
    pub(crate) name: Field,
    /// Chunk and observation text; a relation's predicate; an entity's kind and summary.
    pub(crate) body: Field,
}

pub(crate) fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        key: builder.add_text_field("key", STRING),
        kind: builder.add_text_field("kind", STRING | STORED),
        id: builder.add_i64_field("id", STORED | FAST),
        name: builder.add_text_field("name", text.clone()),
        body: builder.add_text_field("body", text),
    };
    (builder.build(), fields)
}

/// Lowercased words of at most 40 bytes, English stop words removed, Snowball-stemmed:
/// the tokenization the LoCoMo BM25 baseline uses.
pub(crate) fn analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(41))
        .filter(LowerCaser);
    match StopWordFilter::new(Language::English) {
        Some(stop) => builder
            .filter(stop)
            .filter(Stemmer::new(Language::English))
            .build(),
        None => builder.filter(Stemmer::new(Language::English)).build(),
    }
}

pub(crate) fn register(index: &Index) {
    index.tokenizers().register(ANALYZER, analyzer());
}

pub(crate) fn key_term(fields: &Fields, kind: DocKind, id: i64) -> Term {
    Term::from_field_text(fields.key, &format!("{}:{id}", kind.as_str()))
}

/// The analyzed terms of `text`, in order, duplicates kept.
pub(crate) fn tokens(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let folded = fold_text(text);
    let mut stream = analyzer.token_stream(&folded);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzer_stems_and_drops_stop_words() {
        // The Lucene list, as in the LoCoMo baseline: "the" and "to" go, "were" stays.
        assert_eq!(
            tokens("The agents were Running to the meetings"),
            ["agent", "were", "run", "meet"]
        );
    }

    #[test]
    fn kinds_round_trip() {
        for kind in DocKind::ALL {
            assert_eq!(DocKind::parse(kind.as_str()), Some(kind));
        }
    }
}
