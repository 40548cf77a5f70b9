//! `cairn log`: the audit trail — what each agent wrote, when, and from which source —
//! read from the change log and its episodes ([`cairn::Memory::history`]).

use cairn::{HistoryEntry, HistoryQuery};
use serde::Serialize;

use crate::Failure;
use crate::output::{emit, iso};
use crate::store::Store;

/// One change as `cairn log` prints it: flat, with its episode's agent and source.
#[derive(Serialize)]
struct Line<'a> {
    seq: i64,
    /// Milliseconds since the unix epoch, like every time in cairn's JSON.
    at: i64,
    /// The same instant in RFC 3339, for people reading the JSON.
    time: String,
    op: &'static str,
    target: i64,
    what: Option<&'a str>,
    detail: Option<serde_json::Value>,
    episode: Option<i64>,
    agent: Option<&'a str>,
    source: Option<&'a str>,
}

impl<'a> Line<'a> {
    fn new(entry: &'a HistoryEntry) -> Self {
        let change = &entry.change;
        let episode = entry.episode.as_ref();
        Line {
            seq: change.seq.get(),
            at: change.at.as_millis(),
            time: iso(change.at),
            op: change.op.as_str(),
            target: change.target,
            what: entry.what.as_deref(),
            // Details are JSON text in the log; shown as JSON, or as text if they are not.
            detail: change
                .detail
                .as_deref()
                .map(|d| serde_json::from_str(d).unwrap_or_else(|_| serde_json::Value::from(d))),
            episode: change.episode.map(|e| e.get()),
            agent: episode.and_then(|e| e.agent.as_deref()),
            source: episode.and_then(|e| e.source.as_deref()),
        }
    }

    /// `#12  2026-12-03T11:40:06Z  relation.create  Ann –knows→ Bob  (mail, from msg-1)`.
    fn text(&self) -> String {
        let kind = self.op.split('.').next().unwrap_or(self.op);
        let what = match self.what {
            Some(what) => what.replace('\n', " "),
            None => format!("{kind} {} (gone)", self.target),
        };
        let by = match (self.agent, self.source) {
            (Some(agent), Some(source)) => format!("  ({agent}, from {source})"),
            (Some(agent), None) => format!("  ({agent})"),
            (None, Some(source)) => format!("  (from {source})"),
            (None, None) => String::new(),
        };
        format!("#{}  {}  {}  {what}{by}", self.seq, self.time, self.op)
    }
}

pub(crate) fn log(store: &Store, json: bool, query: &HistoryQuery) -> Result<(), Failure> {
    let memory = store.open_for_reading()?;
    let entries = memory.history(query)?;
    let lines: Vec<Line<'_>> = entries.iter().map(Line::new).collect();
    emit(json, &lines, |lines| {
        lines.iter().map(Line::text).collect::<Vec<_>>().join("\n")
    })
}
