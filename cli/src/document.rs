//! `add-document`: a file or standard input stored as a document, split into chunks
//! (Markdown at its headings), under an episode of the author.

use std::io::Read;
use std::path::Path;

use cairn::{ChunkOptions, Document, MAX_DOCUMENT_BYTES};
use serde::Serialize;

use crate::output::{count, emit};
use crate::store::Store;
use crate::{Author, DocFormat, Failure, open_input};

/// What `add-document` was asked to store.
pub(crate) struct Input<'a> {
    pub(crate) file: &'a Path,
    pub(crate) title: Option<&'a str>,
    pub(crate) about: Option<&'a str>,
    pub(crate) format: DocFormat,
    pub(crate) max_chars: usize,
}

/// What `add-document` prints.
#[derive(Serialize)]
struct Added<'a> {
    document: i64,
    chunks: usize,
    chars: usize,
    source: &'a str,
    title: Option<&'a str>,
    markdown: bool,
}

pub(crate) fn add(
    store: &Store,
    json: bool,
    input: &Input<'_>,
    author: &Author,
) -> Result<(), Failure> {
    let stdin = input.file == Path::new("-");
    let text = if stdin {
        read_bounded(std::io::stdin().lock(), "standard input")?
    } else {
        let file = open_input(input.file)?;
        read_bounded(file, &input.file.display().to_string())?
    };
    let markdown = match input.format {
        DocFormat::Markdown => true,
        DocFormat::Text => false,
        DocFormat::Auto => input
            .file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["md", "markdown", "mdx"].contains(&e.to_ascii_lowercase().as_str())),
    };
    let path_text = input.file.display().to_string();
    let source = match (&author.source, stdin) {
        (Some(source), _) => source.as_str(),
        (None, true) => "stdin",
        (None, false) => path_text.as_str(),
    };
    let chunking = ChunkOptions::new()
        .max_chars(input.max_chars)
        .overlap_chars(input.max_chars / 8)
        .markdown(markdown);
    let mut document = Document::new(text.as_str())
        .source(source)
        .chunking(chunking);
    if let Some(title) = input.title {
        document = document.metadata(serde_json::json!({ "title": title }));
    }
    if let Some(about) = input.about {
        document = document.about(about);
    }
    let memory = store.open()?;
    let episode = author.episode().source(source);
    // The episode and the document in one transaction: a refused document leaves nothing.
    let (id, chunks) = memory.transaction(|| memory.episode(&episode)?.add_document(&document))?;
    let added = Added {
        document: id.get(),
        chunks: chunks.len(),
        chars: text.chars().count(),
        source,
        title: input.title,
        markdown,
    };
    emit(json, &added, |a| {
        format!(
            "added document {} ({}, {} characters{}) from {}",
            a.document,
            count(a.chunks, "chunk"),
            a.chars,
            if a.markdown {
                ", split as Markdown"
            } else {
                ""
            },
            a.source
        )
    })
}

/// Reads at most [`MAX_DOCUMENT_BYTES`] of UTF-8 text: a larger input is refused, naming
/// the limit, without reading it all into memory.
fn read_bounded(reader: impl Read, name: &str) -> Result<String, Failure> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_DOCUMENT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(cairn::Error::InvalidInput {
            what: "document",
            reason: format!(
                "{name} is larger than {MAX_DOCUMENT_BYTES} bytes, the limit \
                 (MAX_DOCUMENT_BYTES, 16 MiB)"
            ),
        }
        .into());
    }
    String::from_utf8(bytes).map_err(|e| {
        cairn::Error::InvalidInput {
            what: "document",
            reason: format!("{name} is not UTF-8 text ({e})"),
        }
        .into()
    })
}
