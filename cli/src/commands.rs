//! One function per subcommand.

use std::fs::File;
use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use std::sync::{Arc, OnceLock};

use cairn::{
    Batch, BatchReport, CheckpointPolicy, Direction, Embedder, Episode, HistoryQuery,
    ImportOptions, ImportProgress, JsonlFormat, Memory, Options, SearchOptions, SentenceEmbedder,
    Seq, Stats, Timestamp, VerifyMode, VerifyReport, WalStatus,
};
use serde::Serialize;

use crate::output::{HitView, ProvenHit, emit, iso};
use crate::store::{Store, expand_home};
use crate::{
    Cli, Command, ExportFormat, Failure, Format, Policy, Provenance, SearchArgs, TenantAction,
    open_input,
};

/// The embedder `--model` configured, as `stats` reports it; `None` without a model.
static EMBEDDER: OnceLock<Option<EmbedderView>> = OnceLock::new();

/// Which embedder the memory is opened with.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct EmbedderView {
    pub(crate) id: String,
    pub(crate) dimension: usize,
}

pub(crate) fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json;
    // The options every memory of this command is opened with, from the global flags.
    let options = options_from(&cli)?;
    // The one command that works on a directory of memories rather than one memory.
    if let Command::Tenants { dir, action } = &cli.command {
        let positional = match action {
            TenantAction::Migrate { path, .. } => path.as_deref(),
            _ => None,
        };
        let dir = positional
            .or(dir.as_deref())
            .or(cli.tenants.as_deref())
            .ok_or_else(|| {
                Failure::bad_input("no tenants directory: pass --dir DIR (or --tenants DIR)")
            })?;
        let dir =
            expand_home(dir, std::env::var_os("HOME").as_deref()).map_err(Failure::bad_input)?;
        if matches!(action, TenantAction::Migrate { .. }) && !dir.is_dir() {
            // Opening the tenants would create the folder: a mistyped one is not a fleet.
            return Err(Failure::not_found(format!(
                "no tenants directory {}",
                dir.display()
            )));
        }
        return tenants(&dir, options, json, action);
    }
    let store = Store::from_flags(
        cli.db.as_deref(),
        cli.tenants.as_deref(),
        cli.tenant.as_deref(),
        options,
    )?;
    let store = &store;
    match cli.command {
        Command::Init => init(store, json),
        Command::Add {
            subject,
            predicate,
            object,
            provenance,
        } => add(store, json, &subject, &predicate, &object, &provenance),
        Command::Observe {
            entity,
            text,
            provenance,
        } => observe(store, json, &entity, &text, &provenance),
        Command::AddDocument {
            file,
            title,
            about,
            format,
            max_chars,
            author,
        } => crate::document::add(
            store,
            json,
            &crate::document::Input {
                file: &file,
                title: title.as_deref(),
                about: about.as_deref(),
                format,
                max_chars,
            },
            &author,
        ),
        Command::Delete { what } => crate::edit::delete(store, json, &what),
        Command::Merge {
            keep,
            absorb,
            author,
        } => crate::edit::merge(store, json, &keep, &absorb, &author),
        Command::Rename {
            name,
            new_name,
            author,
        } => crate::edit::rename(store, json, &name, &new_name, &author),
        Command::Alias {
            name,
            alias,
            author,
        } => crate::edit::alias(store, json, &name, &alias, &author),
        Command::Invalidate {
            subject,
            predicate,
            object,
            at,
            author,
        } => crate::edit::invalidate(
            store,
            json,
            (&subject, &predicate, &object),
            at.unwrap_or_else(Timestamp::now),
            &author,
        ),
        Command::Log {
            agent,
            since,
            until,
            before,
            limit,
        } => {
            let mut query = HistoryQuery::new().limit(limit);
            if let Some(agent) = &agent {
                query = query.agent(agent);
            }
            if let Some(since) = since {
                query = query.since(since);
            }
            if let Some(until) = until {
                query = query.until(until);
            }
            if let Some(before) = before {
                query = query.before(Seq::from_raw(before));
            }
            crate::log::log(store, json, &query)
        }
        Command::Import {
            file,
            format,
            skip_invalid,
            agent,
        } => import(store, json, &file, (format, skip_invalid), &agent),
        Command::Export { file, format } => export(store, json, file.as_deref(), format),
        Command::Search {
            query,
            search: args,
        } => search(store, json, &query, &args),
        Command::Context {
            query,
            budget,
            provenance,
            search: args,
        } => context(store, json, &query, (budget, provenance), &args),
        Command::Show { name } => show(store, json, &name),
        Command::Stats => stats(store, json),
        Command::Check { full } => check(store, json, full),
        Command::Backup { dest } => backup(store, json, &dest),
        Command::Restore { backup } => restore(store, json, &backup),
        Command::Tenants { .. } => Ok(()), // handled above
        Command::Mcp { agent } => crate::mcp::serve(store.open()?, &agent),
    }
}

fn options_from(cli: &Cli) -> Result<Options, Failure> {
    let mut options = Options::new();
    let mut view = None;
    if let Some(dir) = &cli.model {
        // A bad model directory is the caller's input, like a bad flag.
        let model = SentenceEmbedder::open(dir).map_err(|e| Failure::bad_input(e.to_string()))?;
        view = Some(EmbedderView {
            id: model.id().to_owned(),
            dimension: model.dimension(),
        });
        options = options.embedder(Arc::new(model));
    }
    let _ = EMBEDDER.set(view);
    if let Some(key) = key_from(cli.key_file.as_deref(), std::env::var_os("CAIRN_KEY"))? {
        options = options.key(key);
    }
    Ok(match cli.checkpoint {
        None => options,
        Some(Policy::Standalone) => options.checkpoint_policy(CheckpointPolicy::Standalone),
        Some(Policy::Replicated) => options.checkpoint_policy(CheckpointPolicy::Replicated),
    })
}

/// The key of an encrypted memory: the file of `--key-file` (or CAIRN_KEY_FILE), or the
/// passphrase in CAIRN_KEY; both at once is ambiguous, so refused.
fn key_from(
    file: Option<&Path>,
    env: Option<std::ffi::OsString>,
) -> Result<Option<cairn::Key>, Failure> {
    match (file, env) {
        (Some(_), Some(_)) => Err(Failure::bad_input(
            "both --key-file (or CAIRN_KEY_FILE) and CAIRN_KEY give a key; set one",
        )),
        (Some(path), None) => cairn::Key::from_file(path)
            .map(Some)
            .map_err(|e| Failure::bad_input(e.to_string())),
        (None, Some(secret)) if secret.is_empty() => {
            Err(Failure::bad_input("CAIRN_KEY is set but empty"))
        }
        (None, Some(secret)) => Ok(Some(cairn::Key::passphrase(env_bytes(secret)?))),
        (None, None) => Ok(None),
    }
}

/// The bytes of an environment variable's value: as they are on Unix; elsewhere its
/// UTF-8, and a value that is not UTF-8 is refused rather than altered.
fn env_bytes(value: std::ffi::OsString) -> Result<Vec<u8>, Failure> {
    #[cfg(unix)]
    {
        Ok(std::os::unix::ffi::OsStringExt::into_vec(value))
    }
    #[cfg(not(unix))]
    {
        value
            .into_string()
            .map(String::into_bytes)
            .map_err(|_| Failure::bad_input("CAIRN_KEY is not UTF-8"))
    }
}

/// The embedder the memories of this process are opened with, if any.
pub(crate) fn embedder() -> Option<&'static EmbedderView> {
    EMBEDDER.get().and_then(Option::as_ref)
}

fn embedder_text(embedder: Option<&EmbedderView>) -> String {
    embedder.map_or_else(
        || "none".to_owned(),
        |e| format!("{} (dimension {})", e.id, e.dimension),
    )
}

/// Writes `batch` under an episode of `provenance` (one transaction; once per key).
fn record(
    store: &Store,
    provenance: &Provenance,
    batch: &Batch<'_>,
) -> Result<(Memory, BatchReport), Failure> {
    let memory = store.open()?;
    let mut episode = provenance.author.episode();
    if let Some(key) = &provenance.key {
        episode = episode.idempotency_key(key.as_str());
    }
    let recorded = memory.record(&episode, batch).map_err(|e| match e {
        // One command, one item: "batch item 0 is invalid" would name a batch the user
        // never wrote.
        cairn::Error::InvalidBatchItem { index: 0, source } => *source,
        other => other,
    })?;
    Ok((memory, recorded.report))
}

/// The one id a one-item batch wrote.
fn only<T: Copy>(ids: &[T]) -> Result<T, Failure> {
    ids.first()
        .copied()
        .ok_or_else(|| Failure::not_found("the write reported no id".to_owned()))
}

fn init(store: &Store, json: bool) -> Result<(), Failure> {
    let memory = store.open()?;
    let stats = memory.stats()?;
    #[derive(Serialize)]
    struct Out<'a> {
        path: &'a Path,
        entities: u64,
    }
    emit(
        json,
        &Out {
            path: memory.path(),
            entities: stats.entities,
        },
        |o| {
            format!(
                "{}: a cairn memory with {} entities",
                o.path.display(),
                o.entities
            )
        },
    )
}

fn add(
    store: &Store,
    json: bool,
    subject: &str,
    predicate: &str,
    object: &str,
    provenance: &Provenance,
) -> Result<(), Failure> {
    let mut batch = Batch::new();
    batch.triple((subject, predicate, object));
    let (memory, report) = record(store, provenance, &batch)?;
    let id = only(&report.relations)?;
    let relation = memory
        .relation(id)?
        .ok_or_else(|| Failure::not_found(format!("relation {id} vanished")))?;
    emit(json, &relation, |r| {
        format!(
            "{} –{}→ {}  (relation {}, {} mention{})",
            r.subject_name,
            r.predicate,
            r.object_name,
            r.id,
            r.mentions,
            if r.mentions == 1 { "" } else { "s" }
        )
    })
}

fn observe(
    store: &Store,
    json: bool,
    entity: &str,
    text: &str,
    provenance: &Provenance,
) -> Result<(), Failure> {
    let mut batch = Batch::new();
    batch.observe(entity, text);
    let (memory, report) = record(store, provenance, &batch)?;
    let id = only(&report.observations)?;
    let owner = match memory.resolve(entity)? {
        Some(e) => memory.entity(e)?,
        None => None,
    };
    #[derive(Serialize)]
    struct Out {
        observation: i64,
        entity: Option<cairn::Entity>,
    }
    emit(
        json,
        &Out {
            observation: id.get(),
            entity: owner,
        },
        |o| match &o.entity {
            Some(e) => format!(
                "observation {} on {} (entity {})",
                o.observation, e.name, e.id
            ),
            None => format!("observation {}", o.observation),
        },
    )
}

fn import(
    store: &Store,
    json: bool,
    file: &Path,
    (format, skip_invalid): (Format, bool),
    agent: &str,
) -> Result<(), Failure> {
    let stdin = file == Path::new("-");
    // The input first: a missing file is named and no memory file is created for it.
    let input = if stdin { None } else { Some(open_input(file)?) };
    let memory = store.open()?;
    let source = if stdin {
        "stdin".to_owned()
    } else {
        file.display().to_string()
    };
    let mut options = ImportOptions::new()
        .skip_invalid(skip_invalid)
        .episode(Episode::new(agent).source(source));
    match format {
        Format::Auto => {}
        Format::Cairn => options = options.format(JsonlFormat::Cairn),
        Format::MemoryJsonl => options = options.format(JsonlFormat::MemoryJsonl),
    }
    let size = match &input {
        Some(input) => Some(input.metadata()?.len()),
        None => None,
    };
    let bar = progress_bar(size);
    if let Some(bar) = &bar {
        let bar = bar.clone();
        options = options.progress(move |p| match p {
            ImportProgress::Read { bytes } => bar.set_position(bytes),
            ImportProgress::Written { done, total } => {
                bar.set_message(format!("writing {done}/{total}"));
            }
            _ => {}
        });
    }
    let report = match input {
        Some(input) => memory.import_jsonl(BufReader::new(input), &options),
        None => memory.import_jsonl(std::io::stdin().lock(), &options),
    };
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = report?;
    // The import is committed. Indexing it now saves the next search the wait; if the
    // index cannot keep up within the sync timeout, the next open catches up instead.
    if let Err(e) = memory.sync() {
        eprintln!("cairn: imported; the search index is still catching up ({e})");
    }
    emit(json, &report, |r| {
        if r.replayed {
            let episode = r
                .episode
                .map_or_else(String::new, |e| format!(" (episode {e})"));
            return format!(
                "{} was imported before{episode}: nothing written to {}",
                file.display(),
                store.path().display()
            );
        }
        let mut text = format!(
            "imported {} records ({} lines, format {}) into {}",
            r.records,
            r.lines,
            r.format,
            store.path().display()
        );
        if r.shortened > 0 {
            text.push_str(&format!(
                "; {} over-long names or observations stored shortened, in full beside them",
                r.shortened
            ));
        }
        if r.skipped > 0 || r.skipped_observations > 0 {
            text.push_str(&format!(
                "; skipped {} invalid lines and {} invalid observations:",
                r.skipped, r.skipped_observations
            ));
            for (line, why) in &r.skipped_lines {
                text.push_str(&format!("\n  line {line}: {why}"));
            }
        }
        text
    })
}

/// A progress bar on stderr when it is a terminal (bytes when the size is known).
fn progress_bar(size: Option<u64>) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = match size {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let style =
        indicatif::ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} [{bar:30}] {msg}")
            .map(|s| s.progress_chars("=> "));
    if let Ok(style) = style {
        bar.set_style(style);
    }
    Some(bar)
}

fn export(
    store: &Store,
    json: bool,
    file: Option<&Path>,
    format: ExportFormat,
) -> Result<(), Failure> {
    let memory = store.open_for_reading()?;
    let format = match format {
        ExportFormat::Cairn => JsonlFormat::Cairn,
        ExportFormat::MemoryJsonl => JsonlFormat::MemoryJsonl,
    };
    let Some(file) = file else {
        let out = std::io::stdout().lock();
        memory.export_jsonl(std::io::BufWriter::new(out), format)?;
        return Ok(());
    };
    let report = export_atomically(&memory, file, format)?;
    emit(json, &report, |r| {
        format!("exported {} lines to {}", r.lines, file.display())
    })
}

/// Writes the export beside `file`, syncs it, then renames it into place: a crash leaves
/// the old file or the new one, never half of one.
fn export_atomically(
    memory: &Memory,
    file: &Path,
    format: JsonlFormat,
) -> Result<cairn::ExportReport, Failure> {
    let mut temporary = file.as_os_str().to_owned();
    temporary.push(format!(".tmp-{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    // A leftover of a killed export would keep its old mode.
    let _ = std::fs::remove_file(&temporary);
    let result = (|| -> Result<cairn::ExportReport, Failure> {
        let mut out = std::io::BufWriter::new(create_private(&temporary)?);
        let report = memory.export_jsonl(&mut out, format)?;
        out.flush()?;
        out.get_ref().sync_all()?;
        std::fs::rename(&temporary, file)?;
        Ok(report)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

/// A new file readable by its owner only (an export holds the whole memory).
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The library's options for `search` and `context`; a time window that ends before it
/// starts is bad input.
fn search_options(search: &SearchArgs) -> Result<SearchOptions, Failure> {
    let mut options = SearchOptions::new()
        .limit(search.limit)
        .depth(search.depth)
        .include_history(search.history)
        .read_your_writes(true);
    if let Some(agent) = &search.agent {
        options = options.agent(agent);
    }
    if search.since.is_some() || search.until.is_some() {
        // An open end is the end of time.
        let since = search.since.unwrap_or(Timestamp::from_millis(i64::MIN));
        let until = search.until.unwrap_or(Timestamp::from_millis(i64::MAX));
        if until <= since {
            return Err(Failure::bad_input(format!(
                "--until {} is not after --since {}",
                iso(until),
                iso(since)
            )));
        }
        options = options.written_between(since, until);
    }
    if let Some(at) = search.valid_at {
        options = options.valid_at(at);
    }
    if !search.kinds.is_empty() {
        let kinds: Vec<_> = search.kinds.iter().map(|k| k.hit_kind()).collect();
        options = options.kinds(&kinds);
    }
    Ok(options)
}

/// A command-line search is its own process and wrote nothing, so read-your-writes has
/// nothing to wait for; what a script expects (`cairn add X && cairn search X` finds X)
/// is every write committed before the command, so it waits for the file's log first.
fn caught_up(memory: &Memory) -> Result<(), Failure> {
    if let Some(stored) = memory.missing_embedder() {
        eprintln!(
            "cairn: searching by words and graph only: the file's vectors are {stored}; pass --model to search them too"
        );
    }
    if let cairn::IndexSource::Rebuilt { reason } = memory.index_source() {
        eprintln!("cairn: read-only: searching an index rebuilt in memory ({reason})");
    }
    memory.sync()?;
    Ok(())
}

fn search(store: &Store, json: bool, query: &str, search: &SearchArgs) -> Result<(), Failure> {
    let options = search_options(search)?;
    let memory = store.open_for_reading()?;
    caught_up(&memory)?;
    let hits = memory.search(query, &options)?;
    let views = HitView::with_provenance(&memory, &hits)?;
    emit(json, &views, |views| {
        views
            .iter()
            .enumerate()
            .map(|(i, h)| {
                format!(
                    "{:>2}. {:.3}  {}  [{}]{}",
                    i + 1,
                    h.hit.score,
                    h.hit.text.replace('\n', " "),
                    h.reasons,
                    h.provenance.as_ref().map_or_else(String::new, |p| p.text())
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn context(
    store: &Store,
    json: bool,
    query: &str,
    (budget, provenance): (usize, bool),
    search: &SearchArgs,
) -> Result<(), Failure> {
    let options = search_options(search)?.provenance(provenance);
    let memory = store.open_for_reading()?;
    caught_up(&memory)?;
    let context = memory.context(query, &options, budget)?;
    #[derive(Serialize)]
    struct Out {
        context: String,
        tokens: usize,
        hits: Vec<ProvenHit>,
    }
    let out = Out {
        hits: HitView::with_provenance(&memory, &context.hits)?,
        context: context.text,
        tokens: context.tokens,
    };
    emit(json, &out, |o| o.context.clone())
}

/// What `show` prints: an entity and everything about it.
#[derive(Serialize)]
struct Shown {
    entity: cairn::Entity,
    created_by: Option<cairn::EpisodeInfo>,
    aliases: Vec<cairn::Alias>,
    relations: Vec<cairn::Relation>,
    observations: Vec<cairn::Observation>,
    mentioned_in_chunks: usize,
}

fn show(store: &Store, json: bool, name: &str) -> Result<(), Failure> {
    let memory = store.open_for_reading()?;
    let missing = || Failure::not_found(format!("no entity named {name:?}"));
    let id = memory.resolve(name)?.ok_or_else(missing)?;
    let entity = memory.entity(id)?.ok_or_else(missing)?;
    let created_by = match entity.episode {
        Some(e) => memory.get_episode(e)?,
        None => None,
    };
    let shown = Shown {
        aliases: memory.aliases(id)?,
        relations: memory.relations(id, Direction::Both)?,
        observations: memory.observations(id)?,
        mentioned_in_chunks: memory.mentioned_by(id, 10_000)?.len(),
        created_by,
        entity,
    };
    emit(json, &shown, show_text)
}

fn show_text(s: &Shown) -> String {
    let e = &s.entity;
    let mut out = format!("{}  (entity {}", e.name, e.id);
    if let Some(kind) = &e.kind {
        out.push_str(&format!(", {kind}"));
    }
    out.push(')');
    if let Some(summary) = &e.summary {
        out.push_str(&format!("\n  {summary}"));
    }
    out.push_str(&format!("\ncreated {}", iso(e.created_at)));
    if let Some(episode) = &s.created_by {
        if let Some(agent) = &episode.agent {
            out.push_str(&format!(" by {agent}"));
        }
        if let Some(source) = &episode.source {
            out.push_str(&format!(" from {source}"));
        }
    }
    let names: Vec<&str> = s.aliases.iter().map(|a| a.name.as_str()).collect();
    out.push_str(&format!("\naliases: {}", names.join(", ")));
    out.push_str("\nrelations:");
    for r in &s.relations {
        out.push_str(&format!(
            "\n  {} –{}→ {}  ({} mentions)",
            r.subject_name, r.predicate, r.object_name, r.mentions
        ));
    }
    out.push_str("\nobservations:");
    for o in &s.observations {
        out.push_str(&format!("\n  - {}", o.text));
    }
    out.push_str(&format!("\nmentioned in {} chunks", s.mentioned_in_chunks));
    out
}

fn stats(store: &Store, json: bool) -> Result<(), Failure> {
    let memory = store.open_for_reading()?;
    #[derive(Serialize)]
    struct Out {
        #[serde(flatten)]
        rows: Stats,
        /// The change log's last position: the memory's high-water mark (a copy that
        /// holds every acknowledged write has reached it; `docs/scale-out.md`).
        last_seq: i64,
        wal: WalStatus,
        embedder: Option<&'static EmbedderView>,
        /// Where searches read the index from: `folder`, or `rebuilt: why` (a read-only
        /// open that could not use the folder).
        index: String,
        read_only: bool,
    }
    let out = Out {
        index: match memory.index_source() {
            cairn::IndexSource::Rebuilt { reason } => format!("rebuilt in memory: {reason}"),
            cairn::IndexSource::Ram => "in memory".to_owned(),
            _ => "folder".to_owned(),
        },
        read_only: memory.is_read_only(),
        rows: memory.stats()?,
        last_seq: memory.last_seq()?.get(),
        wal: memory.wal_status(),
        embedder: embedder(),
    };
    emit(json, &out, |o| {
        let s = &o.rows;
        format!(
            "entities      {}\naliases       {}\nrelations     {}\nobservations  {}\n\
             documents     {}\nchunks        {}\nepisodes      {}\nchanges       {}\n\
             last seq      {}\n{}\n\
             embedder      {}\nindex         {}{}",
            s.entities,
            s.aliases,
            s.relations,
            s.observations,
            s.documents,
            s.chunks,
            s.episodes,
            s.changes,
            o.last_seq,
            wal_text(&o.wal),
            embedder_text(o.embedder),
            o.index,
            if o.read_only { " (read-only)" } else { "" }
        )
    })
}

fn wal_text(wal: &WalStatus) -> String {
    let last = wal
        .last_checkpoint_at
        .map_or_else(|| "never".to_owned(), iso);
    format!(
        "wal           {} bytes\ncheckpoints   {} (main file last written {last})",
        wal.wal_bytes,
        wal.policy.as_str()
    )
}

fn check(store: &Store, json: bool, full: bool) -> Result<(), Failure> {
    let mode = if full {
        VerifyMode::Full
    } else {
        VerifyMode::Quick
    };
    // A file SQLite cannot read at all is the worst damage `check` can find: reported
    // like any other (exit 4), not as a failure to run.
    store.require_existing()?;
    let report = match store.open_reading().and_then(|m| m.verify(mode)) {
        Ok(report) => report,
        Err(e) => VerifyReport::unreadable(mode, &e).ok_or(e)?,
    };
    emit(json, &report, |r| {
        let mut text = format!(
            "{}: {} ({:?} check; schema {}, change log at {}, index at {})",
            store.path().display(),
            if r.is_ok() { "ok" } else { "DAMAGED" },
            r.mode,
            r.schema_version,
            r.last_seq,
            r.index_seq
        );
        if !r.foreign_tables.is_empty() {
            text.push_str(&format!(
                "\nother tables (tolerated): {}",
                r.foreign_tables.join(", ")
            ));
        }
        for p in &r.problems {
            text.push_str(&format!("\n  {}: {}", p.check, p.detail));
        }
        text
    })?;
    if report.is_ok() {
        Ok(())
    } else {
        Err(Failure::damaged(format!(
            "{} problems found",
            report.problems.len()
        )))
    }
}

fn backup(store: &Store, json: bool, dest: &Path) -> Result<(), Failure> {
    let memory = store.open_for_reading()?;
    let report = memory.backup(dest)?;
    emit(json, &report, |r| {
        format!(
            "backed up {} ({} bytes, change log at {}) in {:.1} s; integrity_check ok",
            r.path.display(),
            r.bytes,
            r.last_seq,
            r.copy_time.as_secs_f64()
        )
    })
}

fn restore(store: &Store, json: bool, backup: &Path) -> Result<(), Failure> {
    if !backup.exists() {
        return Err(Failure::not_found(format!(
            "{} does not exist",
            backup.display()
        )));
    }
    // With the command's options: an encrypted backup needs its key.
    let memory = cairn::Memory::restore_with(backup, store.path(), store.options().clone())?;
    memory.sync()?;
    let stats = memory.stats()?;
    emit(json, &stats, |s| {
        format!(
            "restored {} into {} ({} entities, {} relations)",
            backup.display(),
            store.path().display(),
            s.entities,
            s.relations
        )
    })
}

fn tenants(dir: &Path, options: Options, json: bool, action: &TenantAction) -> Result<(), Failure> {
    // The global flags (`--checkpoint`) apply to every tenant's memory.
    let tenants = cairn::Tenants::open_with(dir, options, 64)?;
    match action {
        TenantAction::List => emit(json, &tenants.list()?, |ids| ids.join("\n")),
        TenantAction::Create { id } => {
            let memory = tenants.create(id)?;
            emit(json, &memory.path(), |p| format!("created {}", p.display()))
        }
        TenantAction::Export { id, dest } => {
            let report = tenants.export(id, dest)?;
            emit(json, &report, |r| {
                format!("exported {id} to {} ({} bytes)", r.path.display(), r.bytes)
            })
        }
        TenantAction::Drop { id } => {
            if !tenants.drop_tenant(id)? {
                return Err(Failure::not_found(format!("no tenant {id:?}")));
            }
            emit(json, &true, |_| format!("dropped {id}"))
        }
        TenantAction::Archive { id, dest } => {
            let report = tenants.archive(id, dest)?;
            emit(json, &report, |r| {
                format!(
                    "archived {id} to {} ({} bytes, last seq {}); the live tenant is dropped",
                    r.path.display(),
                    r.bytes,
                    r.last_seq
                )
            })
        }
        TenantAction::Restore { id, src } => {
            let memory = tenants.restore_archive(id, src)?;
            emit(json, &memory.path(), |p| {
                format!("restored {id} from {} into {}", src.display(), p.display())
            })
        }
        TenantAction::Migrate { redo, .. } => migrate(&tenants, json, *redo),
    }
}

/// `cairn tenants migrate`: a bar of tenants on a terminal, then the per-tenant report.
fn migrate(tenants: &cairn::Tenants, json: bool, redo: bool) -> Result<(), Failure> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        let style = indicatif::ProgressStyle::with_template("{pos}/{len} tenants [{bar:30}] {msg}")
            .map(|s| s.progress_chars("=> "));
        if let Ok(style) = style {
            bar.set_style(style);
        }
        bar
    });
    if let Some(bar) = &bar {
        bar.set_length(tenants.list()?.len() as u64);
    }
    let report = tenants.migrate_all(&cairn::MigrateOptions::new().redo(redo), |t| {
        if let Some(bar) = &bar {
            bar.set_message(t.id.clone());
            bar.inc(1);
        }
    })?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    emit(json, &report, |r| {
        let mut lines: Vec<String> = r
            .tenants
            .iter()
            .map(|t| {
                let from = t.from_version.map_or("?".to_owned(), |v| v.to_string());
                match &t.outcome {
                    cairn::MigrateOutcome::Migrated => format!("{}\tmigrated from v{from}", t.id),
                    cairn::MigrateOutcome::Verified => format!("{}\tcurrent, verified", t.id),
                    cairn::MigrateOutcome::Skipped => format!("{}\tdone before, skipped", t.id),
                    cairn::MigrateOutcome::Failed { error } => format!("{}\tFAILED: {error}", t.id),
                    _ => format!("{}\t{:?}", t.id, t.outcome),
                }
            })
            .collect();
        lines.push(format!(
            "{} tenants: {} migrated, {} verified, {} skipped, {} failed",
            r.total, r.migrated, r.verified, r.skipped, r.failed
        ));
        lines.join("\n")
    })?;
    if report.is_ok() {
        Ok(())
    } else {
        Err(Failure::damaged(format!(
            "{} of {} tenants failed to migrate; the others are done",
            report.failed, report.total
        )))
    }
}
