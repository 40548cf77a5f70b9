//! Splitting long text into retrievable chunks: paragraph- and sentence-aware, bounded in
//! size, with a configurable overlap, keeping each chunk's character span; optionally
//! Markdown-aware: split at headings first, each chunk keeping its heading path.

use crate::error::{Error, Result};

/// How [`crate::Memory::add_document`] splits text.
///
/// ```
/// let options = cairn::ChunkOptions::new().max_chars(600).overlap_chars(80).markdown(true);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkOptions {
    max_chars: usize,
    overlap_chars: usize,
    markdown: bool,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        ChunkOptions {
            max_chars: 800,
            overlap_chars: 100,
            markdown: false,
        }
    }
}

impl ChunkOptions {
    /// 800 characters at most per chunk, up to 100 characters of overlap, plain text.
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

    /// Treat the text as Markdown (default `false`): split it at ATX headings (`#` to
    /// `######` at the start of a line, outside fenced code blocks) before splitting by
    /// size, so that no chunk (nor its overlap) runs across a heading, and record each
    /// chunk's heading path (`["Guide", "Install"]` under `# Guide` / `## Install`) in its
    /// [`crate::Chunk::metadata`] as `{"headings": [...]}`. A heading with no text of its
    /// own before the next heading starts the next section's chunk instead of being a
    /// chunk alone. Titles longer than 256 characters are cut in the path.
    ///
    /// ```
    /// use cairn::{ChunkOptions, Document};
    /// # let memory = cairn::Memory::ephemeral()?;
    /// let text = "# Guide\n\nRead this first.\n\n## Install\n\nRun `cargo install cairn`.";
    /// let doc = Document::new(text).chunking(ChunkOptions::new().markdown(true));
    /// let (id, _) = memory.add_document(&doc)?;
    /// let chunks = memory.chunks(id)?;
    /// assert_eq!(chunks.len(), 2);
    /// assert_eq!(chunks[1].text, "## Install\n\nRun `cargo install cairn`.");
    /// assert_eq!(chunks[1].metadata.as_deref(), Some(r#"{"headings":["Guide","Install"]}"#));
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn markdown(mut self, on: bool) -> Self {
        self.markdown = on;
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

/// One piece of a document: its text, `[start, end)` in characters and, for Markdown,
/// the headings it is under (outermost first; empty for plain text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) text: String,
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) headings: Vec<String>,
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
    if !options.markdown {
        return split_range(&chars, 0, chars.len(), &[], options);
    }
    sections(&chars)
        .into_iter()
        .flat_map(|s| split_range(&chars, s.start, s.end, &s.headings, options))
        .collect()
}

/// Splits `chars[from..to]` by sentences and size; every piece gets `headings`.
fn split_range(
    chars: &[char],
    from: usize,
    to: usize,
    headings: &[String],
    options: &ChunkOptions,
) -> Vec<Piece> {
    let spans = sentence_spans(&chars[from..to], options.max_chars)
        .into_iter()
        .map(|s| Span {
            start: s.start + from,
            end: s.end + from,
        });
    let mut pieces = Vec::new();
    let mut current: Vec<Span> = Vec::new();
    for span in spans {
        let would_be = current
            .first()
            .map_or(span.end - span.start, |f| span.end - f.start);
        if !current.is_empty() && would_be > options.max_chars {
            pieces.push(piece(chars, &current, headings));
            current = overlap_tail(&current, options.overlap_chars);
            // The overlap must leave room for the new sentence.
            while !current.is_empty() && span.end - current[0].start > options.max_chars {
                current.remove(0);
            }
        }
        current.push(span);
    }
    if !current.is_empty() {
        pieces.push(piece(chars, &current, headings));
    }
    pieces
}

fn piece(chars: &[char], spans: &[Span], headings: &[String]) -> Piece {
    let (start, end) = (spans[0].start, spans[spans.len() - 1].end);
    Piece {
        text: chars[start..end].iter().collect(),
        start,
        end,
        headings: headings.to_vec(),
    }
}

/// A Markdown section: `[start, end)` in characters and the headings it is under.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Section {
    start: usize,
    end: usize,
    headings: Vec<String>,
}

/// The sections of a Markdown text, split at ATX headings outside fenced code. A
/// section with nothing but its heading line is folded into the next one, which then
/// starts at that heading.
fn sections(chars: &[char]) -> Vec<Section> {
    let mut out = Vec::new();
    // Open headings, outermost first: (level, title).
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut start = 0;
    // Where the current section's own text begins (after its heading line).
    let mut body = 0;
    let mut fence: Option<char> = None;
    let mut line_start = 0;
    while line_start < chars.len() {
        let line_end = chars[line_start..]
            .iter()
            .position(|c| *c == '\n')
            .map_or(chars.len(), |i| line_start + i);
        let line = &chars[line_start..line_end];
        if let Some(marker) = fence_marker(line) {
            match fence {
                None => fence = Some(marker),
                Some(open) if open == marker => fence = None,
                Some(_) => {}
            }
        } else if fence.is_none()
            && let Some((level, title)) = atx_heading(line)
        {
            if !is_blank(&chars[body..line_start]) {
                out.push(section(start, line_start, &stack));
                start = line_start;
            }
            while stack.last().is_some_and(|(l, _)| *l >= level) {
                stack.pop();
            }
            stack.push((level, title));
            body = line_end;
        }
        line_start = line_end + 1;
    }
    out.push(section(start, chars.len(), &stack));
    out
}

fn section(start: usize, end: usize, stack: &[(usize, String)]) -> Section {
    Section {
        start,
        end,
        headings: stack
            .iter()
            .filter(|(_, title)| !title.is_empty())
            .map(|(_, title)| title.clone())
            .collect(),
    }
}

fn is_blank(chars: &[char]) -> bool {
    chars.iter().all(|c| c.is_whitespace())
}

/// Up to three spaces of indent: a line of Markdown may be a block marker.
fn unindented(line: &[char]) -> Option<&[char]> {
    let indent = line.iter().take_while(|c| **c == ' ').count();
    (indent <= 3).then(|| &line[indent..])
}

/// `` ` `` or `~` when the line opens or closes a fenced code block (three or more).
fn fence_marker(line: &[char]) -> Option<char> {
    let rest = unindented(line)?;
    let marker = *rest.first()?;
    (matches!(marker, '`' | '~') && rest.iter().take_while(|c| **c == marker).count() >= 3)
        .then_some(marker)
}

/// An ATX heading's level and title (closing `#`s removed), if the line is one.
fn atx_heading(line: &[char]) -> Option<(usize, String)> {
    let rest = unindented(line)?;
    let level = rest.iter().take_while(|c| **c == '#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let after = &rest[level..];
    if after
        .first()
        .is_some_and(|c| !matches!(c, ' ' | '\t' | '\r'))
    {
        return None;
    }
    let title: String = after.iter().collect();
    let title = title.trim();
    // A closing sequence is `#`s after white space (or the whole title).
    let unclosed = title.trim_end_matches('#');
    let title = if unclosed.is_empty() || unclosed.ends_with([' ', '\t']) {
        unclosed.trim_end()
    } else {
        title
    };
    Some((level, title.chars().take(MAX_TITLE_CHARS).collect()))
}

/// The longest heading title kept in a chunk's path: every chunk of a section repeats
/// its path, so it must stay small whatever the headings are.
const MAX_TITLE_CHARS: usize = 256;

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

    fn markdown(text: &str, max: usize) -> Vec<Piece> {
        split(text, &opts(max, 0).markdown(true))
    }

    fn paths(pieces: &[Piece]) -> Vec<(String, Vec<String>)> {
        pieces
            .iter()
            .map(|p| (p.text.clone(), p.headings.clone()))
            .collect()
    }

    fn owned(path: &[&str]) -> Vec<String> {
        path.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn markdown_splits_at_headings_and_keeps_the_path() {
        let text = "Intro text.\n\n# Guide\n\nRead this.\n\n## Install ##\n\nRun cargo install.\n\n\
                    ## Use\n\nRun cairn init.\n\n# FAQ\n\nWhy? Because.\n";
        let pieces = markdown(text, 800);
        assert_eq!(
            paths(&pieces),
            [
                ("Intro text.".to_owned(), vec![]),
                ("# Guide\n\nRead this.".to_owned(), owned(&["Guide"])),
                (
                    "## Install ##\n\nRun cargo install.".to_owned(),
                    owned(&["Guide", "Install"])
                ),
                (
                    "## Use\n\nRun cairn init.".to_owned(),
                    owned(&["Guide", "Use"])
                ),
                ("# FAQ\n\nWhy? Because.".to_owned(), owned(&["FAQ"])),
            ]
        );
        let chars: Vec<char> = text.chars().collect();
        for p in &pieces {
            assert_eq!(chars[p.start..p.end].iter().collect::<String>(), p.text);
        }
        // Without the option the same text is one chunk with no headings.
        let plain = split(text, &opts(800, 0));
        assert_eq!(plain.len(), 1);
        assert!(plain[0].headings.is_empty());
    }

    #[test]
    fn only_real_headings_outside_code_split() {
        let text = "# A\n\n```sh\n# a shell comment\n```\n\n#hashtag and ####### seven.\n    # indented code\n\n   # Three spaces\n\ntext.";
        let pieces = markdown(text, 800);
        assert_eq!(pieces.len(), 2, "{pieces:#?}");
        assert_eq!(pieces[0].headings, owned(&["A"]));
        assert!(
            pieces[0].text.contains("# a shell comment")
                && pieces[0].text.contains("# indented code")
        );
        assert_eq!(pieces[1].headings, owned(&["Three spaces"]));
    }

    #[test]
    fn a_heading_alone_starts_the_next_section() {
        let pieces = markdown(
            "# Guide\n## Install\nRun it.\n### Linux\n#### Debian\n",
            800,
        );
        assert_eq!(
            paths(&pieces),
            [
                (
                    "# Guide\n## Install\nRun it.".to_owned(),
                    owned(&["Guide", "Install"])
                ),
                (
                    "### Linux\n#### Debian".to_owned(),
                    owned(&["Guide", "Install", "Linux", "Debian"])
                ),
            ]
        );
    }

    #[test]
    fn long_markdown_sections_are_bounded_and_never_cross_a_heading() {
        let section = "A sentence about this part of the guide. ".repeat(12);
        let text = format!("# One\n\n{section}\n\n## Two\n\n{section}\n\n# Three\n\n{section}");
        let pieces = split(
            &text,
            &ChunkOptions::new()
                .max_chars(120)
                .overlap_chars(50)
                .markdown(true),
        );
        assert!(pieces.len() > 6);
        for p in &pieces {
            assert!(p.text.chars().count() <= 120, "{:?}", p.text);
            // A heading line only ever opens a chunk.
            let inner = p
                .text
                .lines()
                .skip(1)
                .filter(|l| l.starts_with('#'))
                .count();
            assert_eq!(inner, 0, "{:?}", p.text);
        }
        let under: Vec<Vec<String>> = pieces.iter().map(|p| p.headings.clone()).collect();
        assert!(under.contains(&owned(&["One", "Two"])) && under.contains(&owned(&["Three"])));
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
                    "\u{a0}", "\t", "...", ".", "\r\n\r\n", "\n# ", "\n## ", "\n```\n", "#",
                ])
                .prop_map(String::from),
                2 => any::<char>().prop_map(String::from),
                1 => "[a-z]{30,90}",
            ];
            prop::collection::vec(pieces, 0..120).prop_map(|v| v.concat())
        }

        /// Valid options: `max` of at least 16, overlap under half of it, plain text or
        /// Markdown.
        fn options() -> impl Strategy<Value = ChunkOptions> {
            (16usize..200, any::<bool>()).prop_flat_map(|(max, markdown)| {
                (0..max / 2).prop_map(move |overlap| opts(max, overlap).markdown(markdown))
            })
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
