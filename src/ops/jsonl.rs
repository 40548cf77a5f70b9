//! Import and export as JSON Lines, in two formats:
//!
//! - **cairn** ([`JsonlFormat::Cairn`]): a header line, then every row of the memory's
//!   tables (episodes, documents, chunks, entities, aliases, relations, observations, the
//!   change log) with their ids, times and provenance. Importing it into an empty memory
//!   and exporting again gives the same lines. Derived data (mention links, vectors, the
//!   search index) is not exported; the importing memory derives it again.
//! - **memory.jsonl** ([`JsonlFormat::MemoryJsonl`]): the reference memory server's file,
//!   `{"type":"entity","name":…,"entityType":…,"observations":[…]}` and
//!   `{"type":"relation","from":…,"to":…,"relationType":…}` lines. Importing merges into
//!   the memory through normalized names (spelling variants become one entity).
//!
//! An import reads and checks the whole input before it takes the write lock, then writes
//! it in one transaction: a malformed line is an [`Error::InvalidLine`] naming it, and
//! nothing is written — or, with [`ImportOptions::skip_invalid`], it is skipped and
//! counted.
//!
//! Every line the reference server can write imports, although it has no limits and
//! cairn has: a name over [`crate::MAX_NAME_BYTES`] is stored shortened (its first
//! bytes, then ` …#` and 16 hex digits of the SHA-256 of its key, so every spelling of
//! it is shortened alike and two long names stay apart), with the full name as an
//! observation `full name: …`; an observation over [`crate::MAX_OBSERVATION_BYTES`] is
//! stored as its first bytes followed by ` […]`, and its full text as a document about
//! the entity. [`ImportReport::shortened`] counts both. With
//! [`ImportOptions::skip_invalid`], an invalid observation is left out and its entity
//! imported ([`ImportReport::skipped_observations`]).
//!
//! A memory.jsonl import is a snapshot merged in, not a stream of assertions: a relation
//! already stored is left as it is (its mention count is not bumped), and with
//! [`ImportOptions::episode`] the import is recorded under an episode whose idempotency
//! key is the content's hash, so importing the same file again writes nothing at all and
//! importing a changed file writes only what is new.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::types::{Value as SqlValue, ValueRef};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::db::migrate::SCHEMA_VERSION;
use crate::error::{Error, Result};
use crate::graph::document::Document;
use crate::graph::entity;
use crate::graph::episode::{self, Episode};
use crate::graph::input::{EntityRef, MAX_OBSERVATION_BYTES, Triple, observation_text};
use crate::graph::relation;
use crate::id::EpisodeId;
use crate::memory::Memory;
use crate::normalize::{MAX_NAME_BYTES, key_unbounded, normalize_name, normalize_predicate};
use crate::ops::knowledge_graph::{KgEntity, KgRelation, check_entity, check_relation};
use crate::time::Timestamp;

/// The longest line an import accepts, in bytes.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// How many skipped lines an [`ImportReport`] describes (all are counted).
const REPORTED_SKIPS: usize = 20;

/// The `format` number of cairn's own export; bumped when its lines change shape.
const CAIRN_FORMAT: i64 = 1;

/// The tables of a cairn export, parents before children (foreign keys are checked as
/// rows arrive). Mention links and vectors are derived, so they are not exported.
const TABLES: &[&str] = &[
    "episode",
    "document",
    "chunk",
    "entity",
    "alias",
    "relation",
    "observation",
    "change",
];

/// A JSON Lines format cairn reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonlFormat {
    /// cairn's own: every row, with ids and provenance; an exact round trip.
    Cairn,
    /// The reference memory server's `memory.jsonl`.
    MemoryJsonl,
}

impl JsonlFormat {
    /// The format's name on the command line: `cairn` or `memory-jsonl`.
    pub fn name(self) -> &'static str {
        match self {
            JsonlFormat::Cairn => "cairn",
            JsonlFormat::MemoryJsonl => "memory-jsonl",
        }
    }
}

/// Progress of an import, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportProgress {
    /// Reading and checking: this many bytes of input so far.
    Read {
        /// Bytes read.
        bytes: u64,
    },
    /// Writing: this many of the records written.
    Written {
        /// Records written so far.
        done: u64,
        /// Records to write.
        total: u64,
    },
}

type ProgressFn = Arc<dyn Fn(ImportProgress) + Send + Sync>;

/// How to import.
///
/// ```
/// use cairn::{ImportOptions, JsonlFormat};
/// let options = ImportOptions::new().format(JsonlFormat::MemoryJsonl).skip_invalid(true);
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
pub struct ImportOptions {
    format: Option<JsonlFormat>,
    skip_invalid: bool,
    progress: Option<ProgressFn>,
    episode: Option<Episode>,
}

impl std::fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportOptions")
            .field("format", &self.format)
            .field("skip_invalid", &self.skip_invalid)
            .field("episode", &self.episode)
            .finish_non_exhaustive()
    }
}

impl ImportOptions {
    /// Detect the format from the first line; stop at the first invalid line.
    pub fn new() -> Self {
        Self::default()
    }

    /// Read this format instead of detecting it (a cairn export starts with a
    /// `{"type":"cairn",…}` header; anything else is read as `memory.jsonl`).
    pub fn format(mut self, format: JsonlFormat) -> Self {
        self.format = Some(format);
        self
    }

    /// Skip invalid lines (counted and described in the report) instead of refusing the
    /// whole import.
    pub fn skip_invalid(mut self, skip: bool) -> Self {
        self.skip_invalid = skip;
        self
    }

    /// Record a memory.jsonl import under `episode` (who imported what, e.g.
    /// `Episode::new("cairn-import").source("memory.jsonl")`), in the import's
    /// transaction. Unless the episode has its own idempotency key, its key is the hash of
    /// the input (`import:sha256:…`): importing the same content again under the same
    /// agent writes nothing and reports [`ImportReport::replayed`]. A cairn export
    /// carries its own episodes, so this applies to memory.jsonl only.
    ///
    /// ```
    /// use cairn::{Episode, ImportOptions};
    /// # let memory = cairn::Memory::ephemeral()?;
    /// let file = r#"{"type":"relation","from":"Ann","to":"Bob","relationType":"knows"}"#;
    /// let options = ImportOptions::new().episode(Episode::new("cairn-import").source("memory.jsonl"));
    /// let first = memory.import_jsonl(file.as_bytes(), &options)?;
    /// let again = memory.import_jsonl(file.as_bytes(), &options)?;
    /// assert!(!first.replayed && again.replayed);
    /// assert_eq!(again.episode, first.episode);
    /// assert_eq!(memory.stats()?.episodes, 1);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn episode(mut self, episode: Episode) -> Self {
        self.episode = Some(episode);
        self
    }

    /// Called as the import reads and writes.
    pub fn progress(mut self, f: impl Fn(ImportProgress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }

    fn report(&self, progress: ImportProgress) {
        if let Some(f) = &self.progress {
            f(progress);
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    /// The format that was read (`cairn` or `memory-jsonl`).
    pub format: &'static str,
    /// Lines read (blank lines included).
    pub lines: u64,
    /// Records written (0 for a [`replayed`](Self::replayed) import).
    pub records: u64,
    /// Lines skipped as invalid (only with [`ImportOptions::skip_invalid`]).
    pub skipped: u64,
    /// The first skipped lines (and, for memory.jsonl, skipped observations): line
    /// number and why.
    pub skipped_lines: Vec<(u64, String)>,
    /// Observations left out of memory.jsonl entities as invalid (only with
    /// [`ImportOptions::skip_invalid`]); their entities were imported.
    pub skipped_observations: u64,
    /// Over-long names and observations of a memory.jsonl file stored shortened, with
    /// their full text kept (see the module documentation of the import).
    pub shortened: u64,
    /// The episode the import was recorded under (see [`ImportOptions::episode`]).
    pub episode: Option<EpisodeId>,
    /// True when this content had been imported under the episode's key before, so
    /// nothing was written.
    pub replayed: bool,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExportReport {
    /// Lines written.
    pub lines: u64,
}

impl Memory {
    /// Writes the whole memory to `out` as JSON Lines, from one consistent snapshot.
    ///
    /// ```
    /// use cairn::{ImportOptions, JsonlFormat, Memory};
    ///
    /// let memory = Memory::ephemeral()?;
    /// memory.add_triple(("Acme Corp", "acquired", "Widget Inc"))?;
    /// let mut file = Vec::new();
    /// memory.export_jsonl(&mut file, JsonlFormat::Cairn)?;
    ///
    /// let copy = Memory::ephemeral()?;
    /// copy.import_jsonl(file.as_slice(), &ImportOptions::new())?;
    /// assert_eq!(copy.stats()?, memory.stats()?);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn export_jsonl(&self, out: impl Write, format: JsonlFormat) -> Result<ExportReport> {
        let mut out = LineWriter { out, lines: 0 };
        self.db().snapshot(|c| match format {
            JsonlFormat::Cairn => export_cairn(c, &mut out),
            JsonlFormat::MemoryJsonl => export_reference(c, &mut out),
        })?;
        out.out.flush()?;
        Ok(ExportReport { lines: out.lines })
    }

    /// Reads JSON Lines from `input` and writes them in one transaction. The whole input
    /// is read and checked first: a bad line is an [`Error::InvalidLine`] naming it and
    /// nothing is written (unless [`ImportOptions::skip_invalid`]). A cairn export
    /// restores into an empty memory only, ids and all; a `memory.jsonl` merges into any
    /// memory through normalized names. Formats: `docs/cli.md`.
    ///
    /// ```
    /// use cairn::{ImportOptions, Memory};
    ///
    /// let memory = Memory::ephemeral()?;
    /// let file = r#"{"type":"entity","name":"Acme Corp","entityType":"organization","observations":["Founded 1999"]}
    /// {"type":"relation","from":"ACME corp","to":"Widget Inc","relationType":"acquired"}"#;
    /// let report = memory.import_jsonl(file.as_bytes(), &ImportOptions::new())?;
    /// assert_eq!((report.format, report.records), ("memory-jsonl", 2));
    /// assert_eq!(memory.stats()?.entities, 2);
    /// # Ok::<(), cairn::Error>(())
    /// ```
    pub fn import_jsonl(
        &self,
        input: impl BufRead,
        options: &ImportOptions,
    ) -> Result<ImportReport> {
        let mut reader = Lines::new(input);
        let first = reader.peek_first()?;
        let format = match options.format {
            Some(f) => f,
            None => detect(first.as_deref()),
        };
        let mut report = ImportReport {
            format: format.name(),
            ..ImportReport::default()
        };
        match format {
            JsonlFormat::Cairn => import_cairn(self, &mut reader, options, &mut report)?,
            JsonlFormat::MemoryJsonl => import_reference(self, &mut reader, options, &mut report)?,
        }
        Ok(report)
    }
}

fn detect(first: Option<&str>) -> JsonlFormat {
    let is_cairn = first
        .and_then(|line| serde_json::from_str::<Value>(line).ok())
        .is_some_and(|v| v.get("type").and_then(Value::as_str) == Some("cairn"));
    if is_cairn {
        JsonlFormat::Cairn
    } else {
        JsonlFormat::MemoryJsonl
    }
}

// ----- reading lines ---------------------------------------------------------------

/// Numbered, UTF-8-checked, length-bounded lines.
struct Lines<R> {
    input: R,
    line: u64,
    bytes: u64,
    peeked: Option<Option<String>>,
    /// Every line read so far (line ends normalized), for an import's idempotency key.
    hash: Sha256,
}

impl<R: BufRead> Lines<R> {
    fn new(input: R) -> Self {
        Lines {
            input,
            line: 0,
            bytes: 0,
            peeked: None,
            hash: Sha256::new(),
        }
    }

    /// `sha256:<hex>` of the lines read so far, each ended by `\n` (so `\r\n` files
    /// hash like `\n` ones).
    fn digest(&self) -> String {
        let digest = self.hash.clone().finalize();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// The first non-blank line, without consuming it.
    fn peek_first(&mut self) -> Result<Option<String>> {
        loop {
            match self.next_raw()? {
                Some(text) if text.trim().is_empty() => continue,
                other => {
                    self.peeked = Some(other.clone());
                    return Ok(other);
                }
            }
        }
    }

    /// The next non-blank line with its number.
    fn next(&mut self) -> Result<Option<(u64, String)>> {
        if let Some(peeked) = self.peeked.take() {
            return Ok(peeked.map(|text| (self.line, text)));
        }
        loop {
            match self.next_raw()? {
                Some(text) if text.trim().is_empty() => continue,
                Some(text) => return Ok(Some((self.line, text))),
                None => return Ok(None),
            }
        }
    }

    fn next_raw(&mut self) -> Result<Option<String>> {
        let mut buf = Vec::new();
        // Bounded, so that a file without newlines cannot make one line fill memory.
        let read = std::io::Read::take(&mut self.input, MAX_LINE_BYTES as u64 + 2)
            .read_until(b'\n', &mut buf)?;
        if read == 0 {
            return Ok(None);
        }
        self.line += 1;
        self.bytes += read as u64;
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        if buf.len() > MAX_LINE_BYTES {
            return Err(Error::InvalidLine {
                line: self.line,
                reason: format!("longer than {MAX_LINE_BYTES} bytes"),
            });
        }
        if self.line == 1 && buf.starts_with(b"\xEF\xBB\xBF") {
            buf.drain(..3);
        }
        self.hash.update(&buf);
        self.hash.update(b"\n");
        String::from_utf8(buf)
            .map(Some)
            .map_err(|e| Error::InvalidLine {
                line: self.line,
                reason: format!("invalid UTF-8 at byte {}", e.utf8_error().valid_up_to()),
            })
    }
}

/// Reads every line through `parse`; invalid lines fail the import or, when skipping,
/// are recorded in `report`.
fn read_all<R: BufRead, T>(
    reader: &mut Lines<R>,
    options: &ImportOptions,
    report: &mut ImportReport,
    mut parse: impl FnMut(u64, &str) -> Result<T>,
) -> Result<Vec<T>> {
    let mut records = Vec::new();
    while let Some((line, text)) = reader.next()? {
        options.report(ImportProgress::Read {
            bytes: reader.bytes,
        });
        match parse(line, &text) {
            Ok(record) => records.push(record),
            Err(e) if options.skip_invalid && e.is_invalid_input() => skip(report, line, &e),
            Err(e) => return Err(at_line(line, e)),
        }
    }
    report.lines = reader.line;
    Ok(records)
}

fn skip(report: &mut ImportReport, line: u64, e: &Error) {
    report.skipped += 1;
    if report.skipped_lines.len() < REPORTED_SKIPS {
        report.skipped_lines.push((line, e.to_string()));
    }
}

/// `e`, as an [`Error::InvalidLine`] naming `line` (unless it already names one).
fn at_line(line: u64, e: Error) -> Error {
    match e {
        Error::InvalidLine { .. } => e,
        other if other.is_invalid_input() => Error::InvalidLine {
            line,
            reason: other.to_string(),
        },
        other => other,
    }
}

fn json_error(e: serde_json::Error) -> Error {
    Error::invalid_input("JSON", e.to_string())
}

// ----- memory.jsonl ------------------------------------------------------------------

/// One line of the reference server's file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ReferenceLine {
    Entity(KgEntity),
    Relation(KgRelation),
}

/// A memory.jsonl line fitted to cairn's limits, checked.
struct Fitted {
    line: u64,
    record: ReferenceLine,
    /// Full texts of shortened observations: stored as documents about the entity
    /// (named as stored).
    documents: Vec<(String, String)>,
    /// Observations left out as invalid (with `skip_invalid`), and why.
    dropped: Vec<String>,
    shortened: u64,
}

/// ` …#` and 16 hex digits: what ends a shortened name.
const SHORTENED_NAME_TAIL: usize = " …#".len() + 16;
/// What ends a shortened observation.
const SHORTENED_TEXT_TAIL: &str = " […]";

/// `text` cut to at most `max` bytes at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// `name` as stored: itself, or shortened if it is over [`MAX_NAME_BYTES`] (see the
/// module documentation); true when shortened.
fn fit_name(name: &str, predicate: bool) -> Result<(String, bool)> {
    if name.len() <= MAX_NAME_BYTES {
        return Ok((name.to_owned(), false));
    }
    let key = key_unbounded(name, predicate)?;
    let digest = Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let head = cut(name.trim(), MAX_NAME_BYTES - SHORTENED_NAME_TAIL).trim_end();
    Ok((format!("{head} …#{hex}"), true))
}

/// An observation as stored, and its full text when it had to be shortened.
fn fit_observation(text: &str) -> (String, Option<String>) {
    let trimmed = text.trim();
    if trimmed.len() <= MAX_OBSERVATION_BYTES {
        return (text.to_owned(), None);
    }
    let head = cut(trimmed, MAX_OBSERVATION_BYTES - SHORTENED_TEXT_TAIL.len()).trim_end();
    (
        format!("{head}{SHORTENED_TEXT_TAIL}"),
        Some(trimmed.to_owned()),
    )
}

/// Fits one line to cairn's limits and checks it as the write will, so a bad line is
/// reported with its number. An invalid observation fails the line, or with
/// `skip_invalid` is left out of it.
fn fit_reference(line: u64, record: ReferenceLine, skip_invalid: bool) -> Result<Fitted> {
    let mut fitted = Fitted {
        line,
        record,
        documents: Vec::new(),
        dropped: Vec::new(),
        shortened: 0,
    };
    match &mut fitted.record {
        ReferenceLine::Entity(e) => {
            let (name, short) = fit_name(&e.name, false)?;
            let mut texts = std::mem::take(&mut e.observations);
            if short {
                fitted.shortened += 1;
                texts.insert(0, format!("full name: {}", e.name.trim()));
            }
            for (i, text) in texts.into_iter().enumerate() {
                let (stored, full) = fit_observation(&text);
                let checked = observation_text(&stored)
                    .map(drop)
                    .and_then(|()| match &full {
                        Some(full) => Document::new(full.as_str())
                            .about(name.as_str())
                            .validate()
                            .map(drop),
                        None => Ok(()),
                    });
                match checked {
                    Ok(()) => {
                        if let Some(full) = full {
                            fitted.shortened += 1;
                            fitted.documents.push((name.clone(), full));
                        }
                        e.observations.push(stored);
                    }
                    Err(err) if skip_invalid && err.is_invalid_input() => {
                        fitted
                            .dropped
                            .push(format!("observations[{i}] left out: {err}"));
                    }
                    Err(err) => {
                        return Err(Error::InvalidLine {
                            line,
                            reason: format!("observations[{i}]: {err}"),
                        });
                    }
                }
            }
            e.name = name;
            check_entity(e)?;
        }
        ReferenceLine::Relation(r) => {
            for (name, predicate) in [
                (&mut r.from, false),
                (&mut r.to, false),
                (&mut r.relation_type, true),
            ] {
                let (fit, short) = fit_name(name, predicate)?;
                fitted.shortened += u64::from(short);
                *name = fit;
            }
            check_relation(r)?;
        }
    }
    Ok(fitted)
}

fn import_reference<R: BufRead>(
    memory: &Memory,
    reader: &mut Lines<R>,
    options: &ImportOptions,
    report: &mut ImportReport,
) -> Result<()> {
    let lines = read_all(reader, options, report, |line, text| {
        let record: ReferenceLine = serde_json::from_str(text).map_err(json_error)?;
        fit_reference(line, record, options.skip_invalid)
    })?;
    let total = lines.len() as u64;
    let (mut entities, mut relations, mut documents) = (Vec::new(), Vec::new(), Vec::new());
    for fitted in lines {
        report.shortened += fitted.shortened;
        for why in fitted.dropped {
            report.skipped_observations += 1;
            if report.skipped_lines.len() < REPORTED_SKIPS {
                report.skipped_lines.push((fitted.line, why));
            }
        }
        documents.extend(fitted.documents);
        match fitted.record {
            ReferenceLine::Entity(e) => entities.push(e),
            ReferenceLine::Relation(r) => relations.push(r),
        }
    }
    let triples = relations
        .iter()
        .map(|r| Triple::new(r.from.as_str(), r.relation_type.as_str(), r.to.as_str()).validate())
        .collect::<Result<Vec<_>>>()?;
    let episode = options.episode.as_ref().map(|e| {
        if e.has_idempotency_key() {
            e.clone()
        } else {
            let key = format!("import:{}", reader.digest());
            e.clone().idempotency_key(key)
        }
    });
    let valid = episode.as_ref().map(Episode::validate).transpose()?;
    memory.transaction(|| {
        let target = match (&episode, &valid) {
            (Some(episode), Some(valid)) => {
                if let Some((id, _)) = memory.db().read(|c| episode::find_keyed(c, valid))? {
                    report.episode = Some(id);
                    report.replayed = true;
                    return Ok(());
                }
                let target = memory.episode(episode)?;
                report.episode = target.current_episode();
                target
            }
            _ => memory.clone(),
        };
        let kg = target.knowledge_graph();
        let mut done = 0;
        for part in entities.chunks(1000) {
            kg.create_entities(part)?;
            done += part.len() as u64;
            options.report(ImportProgress::Written { done, total });
        }
        for (name, text) in &documents {
            // The full text of an observation stored shortened.
            let document = Document::new(text.as_str())
                .about(EntityRef::from(name.as_str()))
                .metadata(serde_json::json!({ "imported_observation": true }));
            target.add_document(&document)?;
        }
        let ctx = target.ctx();
        for part in triples.chunks(1000) {
            // A relation already stored is kept as it is: a snapshot imported twice, or a
            // grown file imported again, asserts nothing twice.
            memory.db().write(|c| {
                for triple in part {
                    let subject = entity::resolve_ref(c, &triple.subject, &ctx)?;
                    let object = entity::resolve_ref(c, &triple.object, &ctx)?;
                    if relation::find(c, subject, &triple.predicate.key, object)?.is_none() {
                        relation::add(c, triple, &ctx)?;
                    }
                }
                Ok(())
            })?;
            done += part.len() as u64;
            options.report(ImportProgress::Written { done, total });
        }
        Ok(())
    })?;
    if !report.replayed {
        report.records = total;
    }
    Ok(())
}

fn export_reference(c: &Connection, out: &mut LineWriter<impl Write>) -> Result<()> {
    const PAGE: usize = 1000;
    let mut after = None;
    loop {
        let page = entity::list(c, after, PAGE)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for e in page {
            let observations = crate::graph::observation::of_entity(c, e.id)?
                .into_iter()
                .map(|o| o.text)
                .collect();
            out.line(&ReferenceLine::Entity(KgEntity {
                name: e.name,
                entity_type: e.kind.unwrap_or_default(),
                observations,
            }))?;
        }
    }
    let mut stmt = c.prepare(
        "SELECT s.name, o.name, r.predicate FROM relation r
         JOIN entity s ON s.id = r.subject_id JOIN entity o ON o.id = r.object_id ORDER BY r.id",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        out.line(&ReferenceLine::Relation(KgRelation {
            from: row.get(0)?,
            to: row.get(1)?,
            relation_type: row.get(2)?,
        }))?;
    }
    Ok(())
}

// ----- cairn's own format --------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    #[serde(rename = "type")]
    kind: String,
    format: i64,
    schema: i64,
    exported_at: i64,
}

/// One row of one table, checked against the table's columns.
struct Row {
    line: u64,
    table: &'static str,
    columns: Vec<String>,
    values: Vec<SqlValue>,
}

fn export_cairn(c: &Connection, out: &mut LineWriter<impl Write>) -> Result<()> {
    out.line(&Header {
        kind: "cairn".into(),
        format: CAIRN_FORMAT,
        schema: SCHEMA_VERSION,
        exported_at: Timestamp::now().as_millis(),
    })?;
    for table in TABLES {
        let mut stmt = c.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))?;
        let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            // Written by hand so that "type" comes first and columns keep table order.
            let mut line = format!("{{\"type\":\"{table}\"");
            for (i, name) in names.iter().enumerate() {
                let value = sql_to_json(row.get_ref(i)?, table, name)?;
                line.push_str(&format!(",{}:{}", Value::from(name.as_str()), value));
            }
            line.push('}');
            out.raw(&line)?;
        }
    }
    Ok(())
}

fn sql_to_json(value: ValueRef<'_>, table: &str, column: &str) -> Result<Value> {
    Ok(match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::from(f),
        ValueRef::Text(t) => Value::from(std::str::from_utf8(t).map_err(|_| {
            Error::invalid_input("stored text", format!("{table}.{column} is not UTF-8"))
        })?),
        ValueRef::Blob(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            serde_json::json!({ "$hex": hex })
        }
    })
}

fn json_to_sql(value: &Value) -> Result<SqlValue> {
    Ok(match value {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => SqlValue::Real(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Object(o) => match o.get("$hex").and_then(Value::as_str) {
            Some(hex) if o.len() == 1 => SqlValue::Blob(from_hex(hex)?),
            _ => {
                return Err(Error::invalid_input(
                    "value",
                    "objects other than {\"$hex\": …} are not column values",
                ));
            }
        },
        Value::Array(_) => {
            return Err(Error::invalid_input(
                "value",
                "arrays are not column values",
            ));
        }
    })
}

fn from_hex(hex: &str) -> Result<Vec<u8>> {
    let bad = || Error::invalid_input("value", "\"$hex\" is not an even number of hex digits");
    if !hex.len().is_multiple_of(2) {
        return Err(bad());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .ok_or_else(bad)
        })
        .collect()
}

/// The columns of every exported table, read from the file's own schema.
fn table_columns(c: &Connection) -> Result<HashMap<&'static str, Vec<String>>> {
    let mut out = HashMap::new();
    for table in TABLES {
        let mut stmt = c.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
        let cols = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.insert(*table, cols);
    }
    Ok(out)
}

fn parse_header(line: u64, text: &str) -> Result<()> {
    let header: Header = serde_json::from_str(text).map_err(|e| Error::InvalidLine {
        line,
        reason: format!("not a cairn export header: {e}"),
    })?;
    if header.kind != "cairn" {
        return Err(Error::InvalidLine {
            line,
            reason: "a cairn export starts with a {\"type\":\"cairn\",…} header".into(),
        });
    }
    if header.format != CAIRN_FORMAT {
        return Err(Error::InvalidLine {
            line,
            reason: format!(
                "the header says export format {}; this cairn reads format {CAIRN_FORMAT}",
                header.format
            ),
        });
    }
    if header.schema > SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            found: header.schema,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

fn parse_row(line: u64, text: &str, columns: &HashMap<&'static str, Vec<String>>) -> Result<Row> {
    let object: Map<String, Value> = serde_json::from_str(text).map_err(json_error)?;
    let kind = object
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::invalid_input("record", "no \"type\""))?;
    let (&table, known) = columns
        .get_key_value(kind)
        .ok_or_else(|| Error::invalid_input("record", format!("unknown type {kind:?}")))?;
    let mut row = Row {
        line,
        table,
        columns: Vec::new(),
        values: Vec::new(),
    };
    for (name, value) in &object {
        if name == "type" {
            continue;
        }
        if !known.contains(name) {
            return Err(Error::invalid_input(
                "record",
                format!("{table} has no column {name:?}"),
            ));
        }
        row.columns.push(name.clone());
        row.values.push(json_to_sql(value)?);
    }
    if row.columns.is_empty() {
        return Err(Error::invalid_input(
            "record",
            format!("a {table} row needs its columns"),
        ));
    }
    check_keys(&row)?;
    Ok(row)
}

/// Keys are derived from names; a row whose key does not match its name would make the
/// name unreachable, so it is refused.
fn check_keys(row: &Row) -> Result<()> {
    let text = |col: &str| {
        row.columns
            .iter()
            .position(|c| c == col)
            .and_then(|i| match &row.values[i] {
                SqlValue::Text(t) => Some(t.as_str()),
                _ => None,
            })
    };
    let (derived, name, key) = match row.table {
        "alias" => (
            normalize_name(text("name").unwrap_or_default()),
            "name",
            "key",
        ),
        "relation" => (
            normalize_predicate(text("predicate").unwrap_or_default()),
            "predicate",
            "predicate_key",
        ),
        _ => return Ok(()),
    };
    if Some(derived?.as_str()) != text(key) {
        return Err(Error::invalid_input(
            "record",
            format!(
                "{}.{key} is not the normalized form of its {name}",
                row.table
            ),
        ));
    }
    Ok(())
}

fn import_cairn<R: BufRead>(
    memory: &Memory,
    reader: &mut Lines<R>,
    options: &ImportOptions,
    report: &mut ImportReport,
) -> Result<()> {
    if let Some((line, text)) = reader.next()? {
        parse_header(line, &text)?;
    }
    let columns = memory.db().read(table_columns)?;
    let rows = read_all(reader, options, report, |line, text| {
        parse_row(line, text, &columns)
    })?;
    let total = rows.len() as u64;
    let mut skipped = Vec::new();
    memory.db().write(|c| {
        require_empty(c)?;
        for (done, row) in rows.iter().enumerate() {
            match insert_row(c, row) {
                Ok(()) => {}
                Err(e) if options.skip_invalid && e.is_invalid_input() => {
                    skipped.push((row.line, e))
                }
                Err(e) => return Err(at_line(row.line, e)),
            }
            if done % 1000 == 999 {
                options.report(ImportProgress::Written {
                    done: done as u64 + 1,
                    total,
                });
            }
        }
        Ok(())
    })?;
    for (line, e) in &skipped {
        skip(report, *line, e);
    }
    report.records = total - skipped.len() as u64;
    Ok(())
}

/// A cairn export carries ids; they can only be kept in a memory that has none yet.
fn require_empty(c: &Connection) -> Result<()> {
    let stats = crate::graph::stats::read(c)?;
    if stats.entities + stats.episodes + stats.documents + stats.changes > 0 {
        return Err(Error::invalid_input(
            "import target",
            format!(
                "a cairn export restores a whole memory with its ids, so it needs an empty one \
                 (this one has {} entities and {} changes); import into a new file, or merge \
                 with the memory-jsonl format",
                stats.entities, stats.changes
            ),
        ));
    }
    Ok(())
}

/// Inserts one row; a constraint it breaks (a duplicate key, a missing parent) or a value
/// of the wrong type for its column (text for an integer key) is the line's fault, not
/// the database's.
fn insert_row(c: &Connection, row: &Row) -> Result<()> {
    let columns: Vec<String> = row.columns.iter().map(|n| format!("\"{n}\"")).collect();
    let marks = vec!["?"; columns.len()].join(", ");
    let sql = format!(
        "INSERT INTO \"{}\" ({}) VALUES ({marks})",
        row.table,
        columns.join(", ")
    );
    match c
        .prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(row.values.iter()))
    {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::ConstraintViolation | rusqlite::ErrorCode::TypeMismatch)
            ) =>
        {
            Err(Error::invalid_input(
                "record",
                format!("{} row refused: {e}", row.table),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

// ----- writing lines -----------------------------------------------------------------

struct LineWriter<W> {
    out: W,
    lines: u64,
}

impl<W: Write> LineWriter<W> {
    fn line(&mut self, value: &impl Serialize) -> Result<()> {
        serde_json::to_writer(&mut self.out, value)
            .map_err(|e| Error::Io(std::io::Error::other(e)))?;
        self.end()
    }

    fn raw(&mut self, text: &str) -> Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.end()
    }

    fn end(&mut self) -> Result<()> {
        self.out.write_all(b"\n")?;
        self.lines += 1;
        Ok(())
    }
}
