//! Splitting folded text into words, with CJK scripts cut into characters.
//!
//! Latin (and every other spaced script) text splits like tantivy's `SimpleTokenizer`:
//! a word is a run of letters and digits. Chinese and Japanese are written without
//! spaces and Korean glues particles to its nouns ("김치를"), so a run of Han, kana or
//! Hangul characters is one "word" to that rule, and a query for any part of it finds
//! nothing. Here such a run is cut into overlapping character bigrams (the usual n-gram
//! answer when no dictionary is at hand): "喝绿茶" gives "喝绿", "绿茶".
//!
//! Single characters are words too in these scripts (茶, tea). Stored text therefore
//! also yields every character of a run ([`Unigrams::Always`]), while a query yields its
//! characters only for a run of one ([`Unigrams::Alone`]): "茶" finds every text with 茶,
//! and "绿茶" asks for the bigram only, so a text holding 绿 and 茶 apart does not match.

use std::collections::HashSet;
use std::sync::Arc;

use tantivy::tokenizer::{Token, TokenFilter, TokenStream, Tokenizer};

use crate::normalize::is_cjk;

/// When a CJK run also yields its single characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unigrams {
    /// Every character, beside the bigrams: for stored text.
    Always,
    /// Only for a run of one character: for queries.
    Alone,
}

/// Words and CJK character n-grams (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct CairnTokenizer {
    unigrams: Unigrams,
    token: Token,
}

impl CairnTokenizer {
    pub(crate) fn new(unigrams: Unigrams) -> CairnTokenizer {
        CairnTokenizer {
            unigrams,
            token: Token::default(),
        }
    }
}

/// The tokens of one text, as byte spans computed up front.
pub(crate) struct CairnTokenStream<'a> {
    text: &'a str,
    spans: std::vec::IntoIter<(usize, usize)>,
    token: &'a mut Token,
}

impl Tokenizer for CairnTokenizer {
    type TokenStream<'a> = CairnTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> CairnTokenStream<'a> {
        self.token.reset();
        CairnTokenStream {
            text,
            spans: spans(text, self.unigrams).into_iter(),
            token: &mut self.token,
        }
    }
}

impl TokenStream for CairnTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let Some((from, to)) = self.spans.next() else {
            return false;
        };
        self.token.text.clear();
        self.token.text.push_str(&self.text[from..to]);
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.token.position.wrapping_add(1);
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Word,
    Cjk,
    Other,
}

fn class(c: char) -> Class {
    if is_cjk(c) {
        Class::Cjk
    } else if c.is_alphanumeric() {
        Class::Word
    } else {
        Class::Other
    }
}

/// The byte spans of `text`'s tokens, in order.
fn spans(text: &str, unigrams: Unigrams) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        let run_class = class(c);
        // The start of every character of the run, and the run's end.
        let mut starts = Vec::new();
        let mut end = start;
        while let Some(&(i, c)) = chars.peek() {
            if class(c) != run_class {
                break;
            }
            starts.push(i);
            end = i + c.len_utf8();
            chars.next();
        }
        match run_class {
            Class::Word => out.push((start, end)),
            Class::Cjk => push_ngrams(&starts, end, unigrams, &mut out),
            Class::Other => {}
        }
    }
    out
}

/// Bigrams of a CJK run (each character's start in `starts`, the run ending at `end`),
/// with unigrams as `unigrams` says.
fn push_ngrams(starts: &[usize], end: usize, unigrams: Unigrams, out: &mut Vec<(usize, usize)>) {
    let next = |i: usize| starts.get(i + 1).copied().unwrap_or(end);
    if starts.len() == 1 {
        out.push((starts[0], end));
        return;
    }
    for (i, &from) in starts.iter().enumerate() {
        if unigrams == Unigrams::Always {
            out.push((from, next(i)));
        }
        if i + 1 < starts.len() {
            out.push((from, next(i + 1)));
        }
    }
}

/// A filter passing either only the words of a list or only the others: the main
/// fields drop stop words, and a stop-word field keeps just them, so that a query made
/// of nothing else ("to be or not to be") still has something to match.
#[derive(Clone)]
pub(crate) struct StopWords {
    words: Arc<HashSet<String>>,
    keep: bool,
}

impl StopWords {
    /// Drops the words of `words`.
    pub(crate) fn remove(words: &[&str]) -> StopWords {
        StopWords::new(words, false)
    }

    /// Keeps only the words of `words`.
    pub(crate) fn keep_only(words: &[&str]) -> StopWords {
        StopWords::new(words, true)
    }

    fn new(words: &[&str], keep: bool) -> StopWords {
        StopWords {
            words: Arc::new(words.iter().map(|w| w.to_string()).collect()),
            keep,
        }
    }
}

impl TokenFilter for StopWords {
    type Tokenizer<T: Tokenizer> = StopWordsTokenizer<T>;

    fn transform<T: Tokenizer>(self, inner: T) -> StopWordsTokenizer<T> {
        StopWordsTokenizer {
            filter: self,
            inner,
        }
    }
}

/// A tokenizer followed by [`StopWords`].
#[derive(Clone)]
pub(crate) struct StopWordsTokenizer<T> {
    filter: StopWords,
    inner: T,
}

impl<T: Tokenizer> Tokenizer for StopWordsTokenizer<T> {
    type TokenStream<'a> = StopWordsStream<T::TokenStream<'a>>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        StopWordsStream {
            filter: self.filter.clone(),
            tail: self.inner.token_stream(text),
        }
    }
}

/// The stream of [`StopWordsTokenizer`].
pub(crate) struct StopWordsStream<S> {
    filter: StopWords,
    tail: S,
}

impl<S: TokenStream> TokenStream for StopWordsStream<S> {
    fn advance(&mut self) -> bool {
        while self.tail.advance() {
            let listed = self.filter.words.contains(&self.tail.token().text);
            if listed == self.filter.keep {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        self.tail.token()
    }

    fn token_mut(&mut self) -> &mut Token {
        self.tail.token_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str, unigrams: Unigrams) -> Vec<String> {
        let mut tokenizer = CairnTokenizer::new(unigrams);
        let mut stream = tokenizer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    #[test]
    fn latin_text_splits_like_the_simple_tokenizer() {
        assert_eq!(
            words("Hello, happy tax-payer! o'brien 42", Unigrams::Always),
            ["Hello", "happy", "tax", "payer", "o", "brien", "42"]
        );
    }

    #[test]
    fn a_chinese_run_gives_bigrams_and_for_stored_text_characters() {
        assert_eq!(words("喝绿茶", Unigrams::Alone), ["喝绿", "绿茶"]);
        assert_eq!(
            words("喝绿茶", Unigrams::Always),
            ["喝", "喝绿", "绿", "绿茶", "茶"]
        );
        assert_eq!(words("茶", Unigrams::Alone), ["茶"]);
    }

    #[test]
    fn scripts_mix_in_one_text() {
        assert_eq!(
            words("iPhone手机 and 東京タワー", Unigrams::Alone),
            ["iPhone", "手机", "and", "東京", "京タ", "タワ", "ワー"]
        );
        assert_eq!(
            words("서울에서 김치를 먹었다", Unigrams::Alone),
            ["서울", "울에", "에서", "김치", "치를", "먹었", "었다"]
        );
    }

    #[test]
    fn stop_words_are_dropped_or_kept_alone() {
        let run = |filter: StopWords| {
            let mut analyzer =
                tantivy::tokenizer::TextAnalyzer::builder(CairnTokenizer::new(Unigrams::Alone))
                    .filter(filter)
                    .build();
            let mut stream = analyzer.token_stream("to be or not to be hamlet");
            let mut out = Vec::new();
            while stream.advance() {
                out.push(stream.token().text.clone());
            }
            out
        };
        let list = ["to", "be", "or", "not"];
        assert_eq!(run(StopWords::remove(&list)), ["hamlet"]);
        assert_eq!(
            run(StopWords::keep_only(&list)),
            ["to", "be", "or", "not", "to", "be"]
        );
    }

    #[test]
    fn offsets_and_positions_follow_the_text() {
        let mut tokenizer = CairnTokenizer::new(Unigrams::Alone);
        let mut stream = tokenizer.token_stream("ab 绿茶");
        let mut seen = Vec::new();
        while stream.advance() {
            let t = stream.token();
            seen.push((t.offset_from, t.offset_to, t.position));
        }
        assert_eq!(seen, [(0, 2, 0), (3, 9, 1)]);
    }
}
