//! Splitting long text into retrievable chunks: paragraph- and sentence-aware, bounded in
//! size, with a configurable overlap, keeping each chunk's character span.

use crate::error::{Error, Result};

/// How [`crate::Memory::add_document`] splits text.
///
/// ```
/// let options = cairn::ChunkOptions::new().max_chars(600).overlap_chars(80);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    max_chars: usize,
    overlap_chars: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            max_chars: 800,
            overlap_chars: 100,
        }
    }
}

impl ChunkOptions {
    /// 800 characters at most per chunk, up to 100 characters of overlap.
    pub fn new() -> Self {
        Self::default()
    }

    /// Upper bound of a chunk's length in characters (a single longer sentence is cut).
    pub fn max_chars(mut self, max: usize) -> Self {
        self.max_chars = max;
        self
    }

    /// How much trailing context (whole sentences, at most this many characters) a chunk
    /// repeats from the one before it.
    pub fn overlap_chars(mut self, overlap: usize) -> Self {
        self.overlap_chars = overlap;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_chars < 16 {
            return Err(Error::invalid_input(
                "chunk options",
                "max_chars must be at least 16",
            ));
        }
        if self.overlap_chars >= self.max_chars / 2 {
            return Err(Error::invalid_input(
                "chunk options",
                "overlap_chars must be less than half of max_chars",
            ));
        }
        Ok(())
    }
}

/// One piece of a document: its text and `[start, end)` in characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) text: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// A sentence (or a hard-cut part of a long one) as a character span.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

/// Splits `text` into chunks. Empty or blank text gives no chunks.
pub(crate) fn split(text: &str, options: &ChunkOptions) -> Vec<Piece> {
    let chars: Vec<char> = text.chars().collect();
    let spans = sentence_spans(&chars, options.max_chars);
    let mut pieces = Vec::new();
    let mut current: Vec<Span> = Vec::new();
    for span in spans {
        let would_be = current
            .first()
            .map_or(span.end - span.start, |f| span.end - f.start);
        if !current.is_empty() && would_be > options.max_chars {
            pieces.push(piece(&chars, &current));
            current = overlap_tail(&current, options.overlap_chars);
            // The overlap must leave room for the new sentence.
            while !current.is_empty() && span.end - current[0].start > options.max_chars {
                current.remove(0);
            }
        }
        current.push(span);
    }
    if !current.is_empty() {
        pieces.push(piece(&chars, &current));
    }
    pieces
}

fn piece(chars: &[char], spans: &[Span]) -> Piece {
    let (start, end) = (spans[0].start, spans[spans.len() - 1].end);
    Piece {
        text: chars[start..end].iter().collect(),
        start,
        end,
    }
}

/// The last sentences of `spans` that fit in `overlap` characters.
fn overlap_tail(spans: &[Span], overlap: usize) -> Vec<Span> {
    let mut tail = Vec::new();
    for span in spans.iter().rev() {
        let end = spans[spans.len() - 1].end;
        if end - span.start > overlap {
            break;
        }
        tail.insert(0, *span);
    }
    tail
}

/// Sentence spans, trimmed of surrounding white space; a paragraph break (blank line)
/// always ends a sentence; sentences longer than `max` are cut at white space (or hard
/// at `max` when a word is longer).
fn sentence_spans(chars: &[char], max: usize) -> Vec<Span> {
    let mut spans = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let ends_sentence = matches!(c, '.' | '!' | '?' | '。' | '！' | '？')
            && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        let paragraph_break = c == '\n'
            && chars[i + 1..]
                .iter()
                .take_while(|c| c.is_whitespace())
                .any(|c| *c == '\n');
        if ends_sentence || paragraph_break {
            push_trimmed(chars, start, i + 1, max, &mut spans);
            start = i + 1;
        }
        i += 1;
    }
    push_trimmed(chars, start, chars.len(), max, &mut spans);
    spans
}

fn push_trimmed(chars: &[char], mut start: usize, mut end: usize, max: usize, out: &mut Vec<Span>) {
    while start < end && chars[start].is_whitespace() {
        start += 1;
    }
    while end > start && chars[end - 1].is_whitespace() {
        end -= 1;
    }
    while end - start > max {
        // Cut at the last white space that keeps the part within `max`.
        let limit = start + max;
        let cut = (start + 1..limit)
            .rev()
            .find(|&j| chars[j].is_whitespace())
            .unwrap_or(limit);
        // A run of white space before the cut (`"word \nword"`) stays out of the part.
        let mut part_end = cut;
        while part_end > start && chars[part_end - 1].is_whitespace() {
            part_end -= 1;
        }
        out.push(Span {
            start,
            end: part_end,
        });
        start = cut;
        while start < end && chars[start].is_whitespace() {
            start += 1;
        }
    }
    if start < end {
        out.push(Span { start, end });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(max: usize, overlap: usize) -> ChunkOptions {
        ChunkOptions::new().max_chars(max).overlap_chars(overlap)
    }

    #[test]
    fn short_text_is_one_chunk_with_its_span() {
        let pieces = split("  Hello there. How are you?  ", &ChunkOptions::new());
        assert_eq!(pieces.len(), 1);
        assert_eq!(pieces[0].text, "Hello there. How are you?");
        assert_eq!((pieces[0].start, pieces[0].end), (2, 27));
    }

    #[test]
    fn blank_text_gives_nothing() {
        assert!(split(" \n\n ", &ChunkOptions::new()).is_empty());
    }

    #[test]
    fn chunks_respect_the_bound_and_spans_match_the_text() {
        let text = "Ann works at Acme. She likes tea! Does Bob know?\n\nNew paragraph here. \
                    Widget Inc is based in Zürich. "
            .repeat(20);
        let chars: Vec<char> = text.chars().collect();
        let pieces = split(&text, &opts(120, 40));
        assert!(pieces.len() > 10);
        for p in &pieces {
            assert!(p.text.chars().count() <= 120, "{:?}", p.text);
            let from_span: String = chars[p.start..p.end].iter().collect();
            assert_eq!(from_span, p.text);
        }
        // Consecutive chunks overlap (the second starts before the first ends) and move on.
        assert!(pieces[1].start < pieces[0].end);
        assert!(pieces[1].end > pieces[0].end);
    }

    #[test]
    fn paragraphs_end_sentences() {
        let pieces = split("no full stop here\n\nsecond paragraph", &opts(20, 0));
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].text, "no full stop here");
        assert_eq!(pieces[1].text, "second paragraph");
    }

    #[test]
    fn an_overlong_sentence_is_cut_at_white_space() {
        let text = "word ".repeat(100);
        let pieces = split(&text, &opts(32, 0));
        assert!(pieces.iter().all(|p| p.text.chars().count() <= 32));
        assert!(
            pieces
                .iter()
                .all(|p| !p.text.starts_with(' ') && !p.text.ends_with(' '))
        );
        let joined: usize = pieces.iter().map(|p| p.text.matches("word").count()).sum();
        assert_eq!(joined, 100, "nothing lost");
        let unbroken = "x".repeat(70);
        let pieces = split(&unbroken, &opts(32, 0));
        assert_eq!(pieces.iter().map(|p| p.text.len()).sum::<usize>(), 70);
    }

    #[test]
    fn a_cut_before_a_run_of_white_space_is_trimmed() {
        // Found by the property below: the part before the cut ended in the space.
        let pieces = split("AaaAaA \nAAaAaAAaAaAaAa", &opts(16, 0));
        assert_eq!(pieces[0].text, "AaaAaA");
        assert_eq!((pieces[0].start, pieces[0].end), (0, 6));
    }

    #[test]
    fn options_are_checked() {
        assert!(opts(8, 0).validate().is_err());
        assert!(opts(100, 60).validate().is_err());
        assert!(ChunkOptions::new().validate().is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Words, sentence ends, paragraph breaks, Unicode white space and any character,
        /// mixed: the shapes the splitter branches on.
        fn texts() -> impl Strategy<Value = String> {
            let pieces = prop_oneof![
                4 => "[a-zA-Z]{1,12}",
                3 => prop::sample::select(vec![
                    " ", ". ", "! ", "? ", "\n", "\n\n", " \n \n ", "。", "！", "\u{3000}",
                    "\u{a0}", "\t", "...", ".", "\r\n\r\n",
                ])
                .prop_map(String::from),
                2 => any::<char>().prop_map(String::from),
                1 => "[a-z]{30,90}",
            ];
            prop::collection::vec(pieces, 0..120).prop_map(|v| v.concat())
        }

        /// Valid options: `max` of at least 16, overlap under half of it.
        fn options() -> impl Strategy<Value = ChunkOptions> {
            (16usize..200)
                .prop_flat_map(|max| (0..max / 2).prop_map(move |overlap| opts(max, overlap)))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn chunks_cover_the_text_in_order_within_bounds(
                text in texts(),
                options in options(),
            ) {
                prop_assert!(options.validate().is_ok());
                let chars: Vec<char> = text.chars().collect();
                let pieces = split(&text, &options);
                let mut covered = vec![false; chars.len()];
                let mut last: Option<&Piece> = None;
                for p in &pieces {
                    // Within the text, not empty, trimmed, at most max_chars, and the text
                    // is its span's.
                    prop_assert!(p.start < p.end && p.end <= chars.len(), "{:?}", p);
                    prop_assert!(p.end - p.start <= options.max_chars, "{:?}", p);
                    let from_span: String = chars[p.start..p.end].iter().collect();
                    prop_assert_eq!(&from_span, &p.text);
                    prop_assert!(!chars[p.start].is_whitespace());
                    prop_assert!(!chars[p.end - 1].is_whitespace());
                    // In order: each chunk starts and ends after the one before it.
                    if let Some(before) = last {
                        prop_assert!(p.start > before.start && p.end > before.end,
                            "{:?} after {:?}", p, before);
                    }
                    last = Some(p);
                    covered[p.start..p.end].iter_mut().for_each(|c| *c = true);
                }
                // Every character that is not white space is in a chunk.
                for (i, c) in chars.iter().enumerate() {
                    prop_assert!(c.is_whitespace() || covered[i], "char {} ({:?}) lost", i, c);
                }
                // Bounded: no more chunks than characters that are not white space.
                let visible = chars.iter().filter(|c| !c.is_whitespace()).count();
                prop_assert!(pieces.len() <= visible);
            }
        }
    }
}
