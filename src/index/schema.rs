//! The tantivy schema of the derived search index, and its English analyzer.

use std::cell::RefCell;
use tantivy::schema::{
    FAST, Field, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};

use tantivy::tokenizer::{Language, LowerCaser, RemoveLongFilter, Stemmer, TextAnalyzer};
use tantivy::{Index, Term};

use crate::index::tokenizer::{CairnTokenizer, StopWords, Unigrams};
pub(crate) use crate::kinds::DocKind;
use crate::normalize::fold_text;

/// Names the schema and analyzer; stored in every commit payload. Change it whenever the
/// fields or the analyzer change, and every index built before is rebuilt on open.
/// v2: text is folded like names (NFKC, case folding) before the analyzer sees it.
/// v3: Snowball stop words; chunk context and document fields; kinds as fast fields.
/// v4: text fields per kind (per-kind BM25 statistics); CJK bigrams; stop-word fields.
pub(crate) const SCHEMA_TAG: &str = "cairn-index-v4";

const ANALYZER: &str = "cairn_en";
const STOP_ANALYZER: &str = "cairn_stop";

/// The text fields of one kind of hit. Every kind has fields of its own, so that tantivy's
/// per-field statistics (average length, document frequency) are that kind's: adding a
/// thousand entities with empty bodies changes nothing in how chunks are scored, and a
/// search for some kinds is a plain union of term queries over their fields, without a
/// kind filter (which would keep tantivy from block-max WAND).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KindFields {
    /// Entity names and aliases; the ends of a relation; an observation's entity.
    pub(crate) name: Option<Field>,
    /// Chunk and observation text; a relation's predicate; an entity's kind and summary.
    pub(crate) body: Field,
    /// For chunks, the text of their neighbours in the document (two each side): a
    /// question's words often sit in the turn before or after its answer.
    pub(crate) context: Option<Field>,
    /// The stop words of `name` and `body`, which those fields drop: searched only when a
    /// query has no other word.
    pub(crate) stop: Field,
}

/// The fields, resolved once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    /// `<kind>:<id>`, the unit of delete-then-add.
    pub(crate) key: Field,
    /// The kind as text, to count and filter by.
    pub(crate) kind: Field,
    /// The kind as a number, read per hit from a fast field.
    pub(crate) kind_code: Field,
    pub(crate) id: Field,
    /// For chunks, their document's id.
    pub(crate) document: Field,
    /// The text fields of each kind of hit, in [`DocKind::HITS`] order.
    hits: [KindFields; 4],
    /// For documents, all their text.
    pub(crate) whole: Field,
}

impl Fields {
    /// The text fields of `kind`; `None` for [`DocKind::Document`], which has only
    /// `whole`.
    pub(crate) fn of(&self, kind: DocKind) -> Option<&KindFields> {
        DocKind::HITS
            .iter()
            .position(|&k| k == kind)
            .map(|i| &self.hits[i])
    }
}

pub(crate) fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = |analyzer: &str| {
        TextOptions::default().set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(analyzer)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
    };
    let mut kind_fields = |kind: DocKind| {
        let mut add = |part: &str, analyzer: &str| {
            builder.add_text_field(&format!("{}_{part}", kind.as_str()), text(analyzer))
        };
        let name = (kind != DocKind::Chunk).then(|| add("name", ANALYZER));
        let body = add("body", ANALYZER);
        let context = (kind == DocKind::Chunk).then(|| add("context", ANALYZER));
        let stop = add("stop", STOP_ANALYZER);
        KindFields {
            name,
            body,
            context,
            stop,
        }
    };
    let hits = DocKind::HITS.map(&mut kind_fields);
    let fields = Fields {
        key: builder.add_text_field("key", STRING),
        kind: builder.add_text_field("kind", STRING),
        kind_code: builder.add_u64_field("kind_code", FAST),
        id: builder.add_i64_field("id", FAST),
        document: builder.add_i64_field("document", FAST),
        hits,
        whole: builder.add_text_field("whole", text(ANALYZER)),
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

/// Words of at most 40 bytes (CJK text as character bigrams and characters, see
/// [`crate::index::tokenizer`]), lowercased, English stop words removed, Snowball-stemmed. Text is
/// folded ([`fold_text`]) before it gets here.
fn analyzer(unigrams: Unigrams) -> TextAnalyzer {
    TextAnalyzer::builder(CairnTokenizer::new(unigrams))
        .filter(RemoveLongFilter::limit(41))
        .filter(LowerCaser)
        .filter(StopWords::remove(STOP_WORDS))
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Only the stop words, as they are (a stemmer has nothing to do with "to be").
fn stop_analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(CairnTokenizer::new(Unigrams::Alone))
        .filter(RemoveLongFilter::limit(41))
        .filter(LowerCaser)
        .filter(StopWords::keep_only(STOP_WORDS))
        .build()
}

pub(crate) fn register(index: &Index) {
    index
        .tokenizers()
        .register(ANALYZER, analyzer(Unigrams::Always));
    index.tokenizers().register(STOP_ANALYZER, stop_analyzer());
}

pub(crate) fn key_term(fields: &Fields, kind: DocKind, id: i64) -> Term {
    Term::from_field_text(fields.key, &format!("{}:{id}", kind.as_str()))
}

/// The analyzed terms of a query `text`, in order, duplicates kept. CJK runs give their
/// bigrams (a lone character itself), matching what stored text gave.
pub(crate) fn tokens(text: &str) -> Vec<String> {
    thread_local! {
        // Building the analyzer (its stop-word set, its stemmer) costs more than
        // analyzing a query; each thread keeps one.
        static ANALYZER: RefCell<TextAnalyzer> = RefCell::new(analyzer(Unigrams::Alone));
    }
    ANALYZER.with_borrow_mut(|analyzer| run(analyzer, text))
}

/// The stop words of a query `text`, in order: what [`KindFields::stop`] holds.
pub(crate) fn stop_tokens(text: &str) -> Vec<String> {
    thread_local! {
        static ANALYZER: RefCell<TextAnalyzer> = RefCell::new(stop_analyzer());
    }
    ANALYZER.with_borrow_mut(|analyzer| run(analyzer, text))
}

fn run(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
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
        assert_eq!(
            tokens("What did the agents do when Running to the meetings"),
            ["agent", "run", "meet"]
        );
    }

    #[test]
    fn cjk_words_survive_the_english_filters() {
        assert_eq!(tokens("喝绿茶"), ["喝绿", "绿茶"]);
        assert_eq!(tokens("東京"), ["東京"]);
        assert_eq!(tokens("김치"), ["김치"]);
    }

    #[test]
    fn stop_tokens_are_the_words_tokens_drop() {
        assert!(tokens("To be, or not to be").is_empty());
        assert_eq!(
            stop_tokens("To be, or not to be: Hamlet"),
            ["to", "be", "or", "not", "to", "be"]
        );
    }

    #[test]
    fn every_hit_kind_has_fields_of_its_own() {
        let (_, fields) = build();
        let chunk = fields.of(DocKind::Chunk).unwrap();
        assert!(chunk.name.is_none() && chunk.context.is_some());
        let entity = fields.of(DocKind::Entity).unwrap();
        assert!(entity.name.is_some() && entity.context.is_none());
        assert_ne!(entity.body, chunk.body);
        assert!(fields.of(DocKind::Document).is_none());
    }

    #[test]
    fn kinds_round_trip() {
        for kind in DocKind::all() {
            assert_eq!(DocKind::parse(kind.as_str()), Some(kind));
            assert_eq!(DocKind::from_code(kind.code()), Some(kind));
        }
    }
}
