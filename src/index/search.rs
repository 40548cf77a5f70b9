//! The query side of the index: BM25 with per-kind statistics, whole-document BM25, the
//! census `verify` compares with the file, and the nearest vectors.

use std::collections::HashMap;

use tantivy::collector::{Count, DocSetCollector, TopDocs};
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, BoostQuery, EnableScoring, Occur, Query, TermQuery,
    Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Searcher, Term};

use super::{SearchIndex, Shared};
use crate::error::{Error, Result};
use crate::id::ChunkId;
use crate::index::schema::{self, DocKind, Fields};

/// One BM25 match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bm25Hit {
    pub(crate) kind: DocKind,
    pub(crate) id: i64,
    /// For a chunk, its document.
    pub(crate) document: Option<i64>,
    pub(crate) score: f32,
}

/// What [`SearchIndex::census`] counted.
pub(crate) struct Census {
    /// Live documents per kind.
    pub(crate) counts: Vec<(DocKind, u64)>,
    /// The last `seq` searchable before and after counting: equal unless a commit landed
    /// in between, and then the counts may mix two positions.
    pub(crate) before: i64,
    pub(crate) after: i64,
}

impl SearchIndex {
    /// BM25 over names, text and chunk context (each weighted as `weights` says),
    /// restricted to `kinds` (empty: every kind of hit), each kind scored with its own
    /// statistics. A query of stop words only ("who are they") is searched for those
    /// words, in the fields that keep them.
    pub(crate) fn bm25(
        &self,
        query: &str,
        kinds: &[DocKind],
        limit: usize,
        weights: FieldWeights,
    ) -> Result<Vec<Bm25Hit>> {
        let kinds = if kinds.is_empty() {
            &DocKind::HITS[..]
        } else {
            kinds
        };
        let mut tokens = schema::tokens(query);
        let stop_words_only = tokens.is_empty();
        if stop_words_only {
            tokens = schema::stop_tokens(query);
        }
        let tokens = counted(tokens);
        self.with_searcher(|searcher| {
            self.bm25_in(searcher, &tokens, kinds, stop_words_only, limit, weights)
        })
    }

    fn bm25_in(
        &self,
        searcher: &Searcher,
        tokens: &[(String, f32)],
        kinds: &[DocKind],
        stop_words_only: bool,
        limit: usize,
        weights: FieldWeights,
    ) -> Result<Vec<Bm25Hit>> {
        let f = &self.shared()?.fields;
        // (kind, its document count, its fields by role: name, body, context).
        let mut searched = Vec::new();
        for &kind in kinds {
            let Some(k) = f.of(kind) else {
                continue;
            };
            let roles = if stop_words_only {
                [(None, 0.0), (Some(k.stop), 1.0), (None, 0.0)]
            } else {
                [
                    (k.name, weights.name),
                    (Some(k.body), 1.0),
                    (k.context, weights.context),
                ]
            };
            searched.push((count(searcher, f, kind)?, roles));
        }
        // A term's rarity is judged among all the kinds searched (its document frequency
        // in the same role's fields of each, over their documents), so that the scores
        // of different kinds stay comparable; a field's average length is its own kind's.
        let all_docs: u64 = searched.iter().map(|(docs, _)| docs).sum();
        let mut clauses = Vec::new();
        for role in 0..3 {
            // The role's average length over the searched kinds that have it.
            let (mut role_tokens, mut role_docs) = (0u64, 0u64);
            for &(docs, roles) in &searched {
                if let (Some(field), _) = roles[role] {
                    role_tokens += Bm25StatisticsProvider::total_num_tokens(searcher, field)?;
                    role_docs += docs;
                }
            }
            let field_tokens =
                (role_tokens as f64 * all_docs as f64 / role_docs.max(1) as f64) as u64;
            for (token, repeats) in tokens {
                let mut doc_freq = 0;
                for (_, roles) in &searched {
                    if let (Some(field), _) = roles[role] {
                        doc_freq += searcher.doc_freq(&Term::from_field_text(field, token))?;
                    }
                }
                for &(_, roles) in &searched {
                    let (Some(field), weight) = roles[role] else {
                        continue;
                    };
                    let scoring = Scoring {
                        all_docs,
                        field_tokens,
                        doc_freq,
                    };
                    clauses.extend(term_clause(field, token, weight * repeats, scoring));
                }
            }
        }
        // One flat union of term queries, whatever the kinds: tantivy scores it with
        // block-max WAND (skipping blocks that cannot make the top).
        self.top(searcher, clauses, limit)
    }

    /// Runs `search` on the live index's searcher: `Err(IndexRebuilding)` while it is
    /// damaged or rebuilt, and a tantivy error reported as damage (see [`Shared::damaged`]).
    fn with_searcher<T>(&self, search: impl FnOnce(&Searcher) -> Result<T>) -> Result<T> {
        let shared = self.shared()?;
        let live = shared.searchable()?;
        search(&live.reader.searcher()).map_err(|e| shared.damaged(e))
    }

    /// BM25 of whole documents: their ids and scores, best first.
    pub(crate) fn documents(&self, query: &str, limit: usize) -> Result<Vec<(i64, f32)>> {
        self.with_searcher(|searcher| self.documents_in(searcher, query, limit))
    }

    fn documents_in(
        &self,
        searcher: &Searcher,
        query: &str,
        limit: usize,
    ) -> Result<Vec<(i64, f32)>> {
        let f = &self.shared()?.fields;
        // Documents are scored among documents: a word in every session of a
        // conversation says nothing about which session the query is about.
        let docs = count(searcher, f, DocKind::Document)?;
        let mut clauses = Vec::new();
        for (token, repeats) in counted(schema::tokens(query)) {
            let scoring = Scoring {
                all_docs: docs,
                field_tokens: Bm25StatisticsProvider::total_num_tokens(searcher, f.whole)?,
                doc_freq: searcher.doc_freq(&Term::from_field_text(f.whole, &token))?,
            };
            clauses.extend(term_clause(f.whole, &token, repeats, scoring));
        }
        Ok(self
            .top(searcher, clauses, limit)?
            .into_iter()
            .map(|h| (h.id, h.score))
            .collect())
    }

    fn top(
        &self,
        searcher: &Searcher,
        clauses: Vec<(Occur, Box<dyn Query>)>,
        limit: usize,
    ) -> Result<Vec<Bm25Hit>> {
        if limit == 0 || clauses.is_empty() {
            return Ok(Vec::new());
        }
        let collector = TopDocs::with_limit(limit).order_by_score();
        let top = searcher.search(&BooleanQuery::new(clauses), &collector)?;
        let mut hits = Vec::with_capacity(top.len());
        let shared = self.shared()?;
        for (score, address) in top {
            let columns = shared
                .columns
                .of(searcher, address.segment_ord, &shared.fields)?;
            let kind = columns
                .kind
                .first(address.doc_id)
                .and_then(DocKind::from_code);
            let id = columns.id.first(address.doc_id);
            let document = columns.document.first(address.doc_id);
            if let (Some(kind), Some(id)) = (kind, id) {
                hits.push(Bm25Hit {
                    kind,
                    id,
                    document,
                    score,
                });
            }
        }
        Ok(hits)
    }
}

/// How many index documents of `kind` there are (deleted ones counted until merged away,
/// like the fields' token counts).
fn count(searcher: &Searcher, f: &Fields, kind: DocKind) -> Result<u64> {
    Ok(searcher.doc_freq(&Term::from_field_text(f.kind, kind.as_str()))?)
}

/// The BM25 statistics one term query of one kind is scored with.
#[derive(Clone, Copy, Debug)]
struct Scoring {
    /// The documents of every kind searched.
    all_docs: u64,
    /// The field's token count as BM25 divides it by `all_docs`: scaled so that the
    /// quotient is the average length of the role (name, body, context) over the
    /// searched kinds that have it.
    field_tokens: u64,
    /// The term's document frequency over the same role's fields of every kind searched.
    doc_freq: u64,
}

/// A term query scored with [`Scoring`] instead of the whole index's statistics. With
/// fields per kind, a chunk-only search is scored with chunk statistics alone, whatever
/// else the memory holds.
#[derive(Clone, Debug)]
struct Scored {
    scoring: Scoring,
    query: TermQuery,
}

impl Query for Scored {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        match scoring {
            EnableScoring::Enabled { searcher, .. } => {
                let statistics = Statistics {
                    scoring: self.scoring,
                };
                self.query
                    .weight(EnableScoring::enabled_from_statistics_provider(
                        &statistics,
                        searcher,
                    ))
            }
            disabled => self.query.weight(disabled),
        }
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.query.query_terms(visitor);
    }
}

/// [`Scoring`] as tantivy asks for it (for the one term of a [`Scored`] query).
struct Statistics {
    scoring: Scoring,
}

impl Bm25StatisticsProvider for Statistics {
    fn total_num_tokens(&self, _field: Field) -> tantivy::Result<u64> {
        Ok(self.scoring.field_tokens)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.scoring.all_docs.max(1))
    }

    fn doc_freq(&self, _term: &Term) -> tantivy::Result<u64> {
        Ok(self.scoring.doc_freq)
    }
}

/// How much a query term counts in each text field, relative to `body`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldWeights {
    pub(crate) name: f32,
    pub(crate) context: f32,
}

/// The distinct tokens of a query in first-seen order, each with how often it occurs: a
/// word repeated n times becomes one clause weighted n (the same score as n clauses), so
/// a query of 8,000 copies of one word costs what a query of that word does.
fn counted(tokens: Vec<String>) -> Vec<(String, f32)> {
    let mut out: Vec<(String, f32)> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for token in tokens {
        match at.get(&token).and_then(|&i| out.get_mut(i)) {
            Some(entry) => entry.1 += 1.0,
            None => {
                at.insert(token.clone(), out.len());
                out.push((token, 1.0));
            }
        }
    }
    out
}

/// A clause of the union: `token` in `field`, weighted, scored with `scoring`; none
/// when the weight is not positive.
fn term_clause(
    field: Field,
    token: &str,
    weight: f32,
    scoring: Scoring,
) -> Option<(Occur, Box<dyn Query>)> {
    (weight > 0.0).then(|| {
        let query = Scored {
            scoring,
            query: TermQuery::new(
                Term::from_field_text(field, token),
                IndexRecordOption::WithFreqs,
            ),
        };
        let boosted: Box<dyn Query> = Box::new(BoostQuery::new(Box::new(query), weight));
        (Occur::Should, boosted)
    })
}

impl Shared {
    /// The chunks searchable now whose text holds every word of `key` (as the analyzer
    /// sees words): the candidates for a new name's mentions. None if the key has no
    /// searchable word (it is all stop words).
    pub(super) fn chunks_with_words(&self, key: &str) -> Result<Vec<ChunkId>> {
        let tokens = schema::tokens(key);
        let Some(chunk) = self.fields.of(DocKind::Chunk) else {
            return Ok(Vec::new());
        };
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let must: Vec<(Occur, Box<dyn Query>)> = tokens
            .iter()
            .map(|t| {
                let term = Term::from_field_text(chunk.body, t);
                (
                    Occur::Must,
                    Box::new(TermQuery::new(term, IndexRecordOption::Basic)) as Box<dyn Query>,
                )
            })
            .collect();
        let searcher = self.current().reader.searcher();
        let found = searcher.search(&BooleanQuery::new(must), &DocSetCollector)?;
        let mut chunks = Vec::with_capacity(found.len());
        for address in found {
            let columns = self
                .columns
                .of(&searcher, address.segment_ord, &self.fields)?;
            if let Some(id) = columns.id.first(address.doc_id) {
                chunks.push(ChunkId::from_raw(id));
            }
        }
        Ok(chunks)
    }
}

impl SearchIndex {
    /// Live index documents per kind, and the change-log position they reflect.
    pub(crate) fn census(&self) -> Result<Census> {
        let shared = self.shared()?;
        let before = shared.progress.lock().visible;
        let f = &shared.fields;
        let counts = self.with_searcher(|searcher| {
            let mut counts = Vec::new();
            for kind in DocKind::all() {
                let query = TermQuery::new(
                    Term::from_field_text(f.kind, kind.as_str()),
                    IndexRecordOption::Basic,
                );
                let n = searcher.search(&query, &Count)?;
                counts.push((kind, n as u64));
            }
            Ok(counts)
        })?;
        let after = shared.progress.lock().visible;
        Ok(Census {
            counts,
            before,
            after,
        })
    }

    /// How many segments searches read now.
    #[cfg(test)]
    pub(crate) fn segments(&self) -> usize {
        self.shared()
            .unwrap()
            .current()
            .reader
            .searcher()
            .segment_readers()
            .len()
    }
    /// Whether the memory has an embedder (so a search has a vector channel).
    pub(crate) fn has_embedder(&self) -> bool {
        self.core.db.options().embedder.is_some()
    }

    /// `query`'s vector by the memory's embedder; `None` when it has none.
    pub(crate) fn embed_query(&self, query: &str) -> Result<Option<ndarray::Array1<f32>>> {
        let Some((embedding, _)) = &self.shared()?.vectors else {
            return Ok(None);
        };
        let row = embedding.embedder.embed_query(query)?;
        if row.len() != embedding.embedder.dimension() {
            return Err(Error::Index(format!(
                "embedder {} returned {} values for a query, not {}",
                embedding.embedder.id(),
                row.len(),
                embedding.embedder.dimension()
            )));
        }
        Ok(Some(row))
    }

    /// The `k` rows whose vectors are most similar to `row` (a query's vector from
    /// [`SearchIndex::embed_query`]), best first; `None` when the memory has no embedder.
    pub(crate) fn nearest(
        &self,
        conn: &rusqlite::Connection,
        row: ndarray::ArrayView1<'_, f32>,
        k: usize,
    ) -> Result<Option<Vec<(DocKind, i64, f32)>>> {
        let Some((_, cache)) = &self.shared()?.vectors else {
            return Ok(None);
        };
        cache.top_k(conn, row, k).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_query_words_become_one_weighted_clause() {
        let tokens = ["acme", "corp", "acme", "acme"].map(String::from).to_vec();
        assert_eq!(
            counted(tokens),
            [("acme".to_owned(), 3.0), ("corp".to_owned(), 1.0)]
        );
    }
}
