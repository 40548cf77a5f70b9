//! The tantivy schema of the derived search index, and its English analyzer.

use tantivy::schema::{
    FAST, Field, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, Term};

use crate::normalize::fold_text;

/// Names the schema and analyzer; stored in every commit payload. Change it whenever the
/// fields or the analyzer change, and every index built before is rebuilt on open.
/// v2: text is folded like names (NFKC, case folding) before the analyzer sees it.
/// v3: Snowball stop words; chunk context and document fields; kinds as fast fields.
pub(crate) const SCHEMA_TAG: &str = "cairn-index-v3";

const ANALYZER: &str = "cairn_en";

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

/// The fields, resolved once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// `<kind>:<id>`, the unit of delete-then-add.
    pub(crate) key: Field,
    /// The kind as text, to filter by.
    pub(crate) kind: Field,
    /// The kind as a number, read per hit from a fast field.
    pub(crate) kind_code: Field,
    pub(crate) id: Field,
    /// For chunks, their document's id.
    pub(crate) document: Field,
    /// Entity names and aliases; the ends of a relation; an observation's entity.
    pub(crate) name: Field,
    /// Chunk and observation text; a relation's predicate; an entity's kind and summary.
    pub(crate) body: Field,
    /// For chunks, the text of their neighbours in the document (two each side): a
    /// question's words often sit in the turn before or after its answer.
    pub(crate) context: Field,
    /// For documents, all their text.
    pub(crate) whole: Field,
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
        kind: builder.add_text_field("kind", STRING),
        kind_code: builder.add_u64_field("kind_code", FAST),
        id: builder.add_i64_field("id", FAST),
        document: builder.add_i64_field("document", FAST),
        name: builder.add_text_field("name", text.clone()),
        body: builder.add_text_field("body", text.clone()),
        context: builder.add_text_field("context", text.clone()),
        whole: builder.add_text_field("whole", text),
    };
    (builder.build(), fields)
}

/// The Snowball project's English stop words (https://snowballstem.org/, BSD licence),
/// without the forms with apostrophes, which the tokenizer never produces. Measured on
/// LoCoMo, this list gains .06 recall@10 over Lucene's 33 words, which keep question
/// words ("what", "did", "when", "her") that occur everywhere.
const STOP_WORDS: &[&str] = &[
    "i",
    "me",
    "my",
    "myself",
    "we",
    "our",
    "ours",
    "ourselves",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
    "he",
    "him",
    "his",
    "himself",
    "she",
    "her",
    "hers",
    "herself",
    "it",
    "its",
    "itself",
    "they",
    "them",
    "their",
    "theirs",
    "themselves",
    "what",
    "which",
    "who",
    "whom",
    "this",
    "that",
    "these",
    "those",
    "am",
    "is",
    "are",
    "was",
    "were",
    "be",
    "been",
    "being",
    "have",
    "has",
    "had",
    "having",
    "do",
    "does",
    "did",
    "doing",
    "would",
    "should",
    "could",
    "ought",
    "cannot",
    "a",
    "an",
    "the",
    "and",
    "but",
    "if",
    "or",
    "because",
    "as",
    "until",
    "while",
    "of",
    "at",
    "by",
    "for",
    "with",
    "about",
    "against",
    "between",
    "into",
    "through",
    "during",
    "before",
    "after",
    "above",
    "below",
    "to",
    "from",
    "up",
    "down",
    "in",
    "out",
    "on",
    "off",
    "over",
    "under",
    "again",
    "further",
    "then",
    "once",
    "here",
    "there",
    "when",
    "where",
    "why",
    "how",
    "all",
    "any",
    "both",
    "each",
    "few",
    "more",
    "most",
    "other",
    "some",
    "such",
    "no",
    "nor",
    "not",
    "only",
    "own",
    "same",
    "so",
    "than",
    "too",
    "very",
];

/// Words of at most 40 bytes, lowercased, English stop words removed, Snowball-stemmed.
/// Text is folded ([`fold_text`]) before it gets here.
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(41))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOP_WORDS.iter().map(|w| w.to_string()),
        ))
        .filter(Stemmer::new(Language::English))
        .build()
}

pub(crate) fn register(index: &Index) {
    index.tokenizers().register(ANALYZER, analyzer());
}

pub(crate) fn key_term(fields: &Fields, kind: DocKind, id: i64) -> Term {
    Term::from_field_text(fields.key, &format!("{}:{id}", kind.as_str()))
}

/// The analyzed terms of `text`, in order, duplicates kept.
pub(crate) fn tokens(text: &str) -> Vec<String> {
    thread_local! {
        // Building the analyzer (its stop-word set, its stemmer) costs more than
        // analyzing a query; each thread keeps one.
        static ANALYZER: std::cell::RefCell<TextAnalyzer> = std::cell::RefCell::new(analyzer());
    }
    let folded = fold_text(text);
    ANALYZER.with_borrow_mut(|analyzer| {
        let mut stream = analyzer.token_stream(&folded);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analyzer_stems_and_drops_stop_words() {
        assert_eq!(
            tokens("What did the agents do when Running to the meetings"),
            ["agent", "run", "meet"]
        );
    }

    #[test]
    fn kinds_round_trip() {
        for kind in DocKind::all() {
            assert_eq!(DocKind::parse(kind.as_str()), Some(kind));
            assert_eq!(DocKind::from_code(kind.code()), Some(kind));
        }
    }
}
