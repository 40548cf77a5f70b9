//! Printing results: JSON for scripts, short text for people.

use std::io::Write;

use cairn::{Hit, Memory, Provenance, Reason, Target, Timestamp};
use serde::Serialize;

use crate::Failure;

/// Prints `value` as one JSON object with `--json`, else the text `human` renders.
pub(crate) fn emit<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut out, value).map_err(std::io::Error::other)?;
        writeln!(out)?;
    } else {
        let text = human(value);
        if !text.is_empty() {
            writeln!(out, "{text}")?;
        }
    }
    Ok(())
}

/// `1 relation`, `2 relations`: a count and its noun for people.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// `2026-11-23T04:50:01Z` (UTC, seconds).
pub(crate) fn iso(t: Timestamp) -> String {
    let secs = t.as_millis().div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A hit as scripts and MCP clients see it: kind and id flattened.
#[derive(Debug, Serialize)]
pub(crate) struct HitView {
    pub kind: &'static str,
    pub id: i64,
    pub score: f32,
    pub text: String,
    pub why: Vec<serde_json::Value>,
}

impl HitView {
    pub(crate) fn new(hit: &Hit) -> Self {
        let (kind, id) = match hit.target {
            Target::Entity(id) => ("entity", id.get()),
            Target::Relation(id) => ("relation", id.get()),
            Target::Observation(id) => ("observation", id.get()),
            Target::Chunk(id) => ("chunk", id.get()),
            _ => ("other", 0),
        };
        HitView {
            kind,
            id,
            score: hit.score,
            text: hit.text.clone(),
            why: hit.why.iter().map(reason_json).collect(),
        }
    }
}

/// A hit with who wrote it and when, as `search` and `context` print it: the hit's
/// fields and a `provenance` object (absent for a hit deleted since the search).
#[derive(Serialize)]
pub(crate) struct ProvenHit {
    #[serde(flatten)]
    pub(crate) hit: HitView,
    /// Why it was found, for people (`bm25 #1, graph 1 from entity 3`).
    #[serde(skip)]
    pub(crate) reasons: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) provenance: Option<ProvenanceView>,
}

impl HitView {
    /// `hits` with their provenance, read in one call ([`Memory::provenance`]).
    pub(crate) fn with_provenance(memory: &Memory, hits: &[Hit]) -> cairn::Result<Vec<ProvenHit>> {
        let targets: Vec<Target> = hits.iter().map(|h| h.target).collect();
        let mut provenance = memory.provenance(&targets)?;
        Ok(hits
            .iter()
            .map(|hit| ProvenHit {
                hit: HitView::new(hit),
                reasons: reasons_text(hit),
                provenance: provenance
                    .remove(&hit.target)
                    .map(|p| ProvenanceView::new(&p)),
            })
            .collect())
    }
}

/// [`Provenance`] with RFC 3339 times; unknown parts are left out.
#[derive(Serialize)]
pub(crate) struct ProvenanceView {
    written: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    valid_to: Option<String>,
    /// The UTC date it was written on, for the text output.
    #[serde(skip)]
    written_on: String,
}

impl ProvenanceView {
    pub(crate) fn new(p: &Provenance) -> Self {
        ProvenanceView {
            written: iso(p.written),
            agent: p.agent.clone(),
            source: p.source.clone(),
            valid_from: p.valid_from.map(iso),
            valid_to: p.valid_to.map(iso),
            written_on: p.written_on().to_owned(),
        }
    }

    /// `  (mail, from msg-1, 2026-11-30; valid until 2026-12-01T00:00:00Z)` for people.
    pub(crate) fn text(&self) -> String {
        let mut parts = Vec::new();
        if let Some(agent) = &self.agent {
            parts.push(agent.clone());
        }
        if let Some(source) = &self.source {
            parts.push(format!("from {source}"));
        }
        parts.push(self.written_on.clone());
        let mut text = format!("  ({}", parts.join(", "));
        match (&self.valid_from, &self.valid_to) {
            (Some(from), Some(to)) => text.push_str(&format!("; valid from {from} until {to}")),
            (Some(from), None) => text.push_str(&format!("; valid from {from}")),
            (None, Some(to)) => text.push_str(&format!("; valid until {to}")),
            (None, None) => {}
        }
        text.push(')');
        text
    }
}

fn reason_json(reason: &Reason) -> serde_json::Value {
    match reason {
        Reason::Bm25 { rank, score } => {
            serde_json::json!({ "channel": "bm25", "rank": rank, "score": score })
        }
        Reason::Vector { rank, similarity } => {
            serde_json::json!({ "channel": "vector", "rank": rank, "similarity": similarity })
        }
        Reason::Graph { distance, seed } => {
            serde_json::json!({ "channel": "graph", "distance": distance, "seed": seed.get() })
        }
        _ => serde_json::json!({ "channel": "other" }),
    }
}

/// `bm25 #1, graph 2 hops from 7` for people.
pub(crate) fn reasons_text(hit: &Hit) -> String {
    hit.why
        .iter()
        .map(|r| match r {
            Reason::Bm25 { rank, .. } => format!("bm25 #{rank}"),
            Reason::Vector { rank, .. } => format!("vector #{rank}"),
            Reason::Graph { distance, seed } => format!("graph {distance} from entity {seed}"),
            _ => "other".into(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso(Timestamp::from_millis(0)), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso(Timestamp::from_millis(1_795_409_401_000)),
            "2026-11-23T04:50:01Z"
        );
        assert_eq!(
            iso(Timestamp::from_millis(951_782_400_000)),
            "2000-02-29T00:00:00Z"
        );
    }
}
