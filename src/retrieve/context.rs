//! Rendering hits as prompt text within a token budget.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use crate::error::Result;
use crate::retrieve::provenance::provenance_of;
use crate::retrieve::{Hit, Target};

/// Hits rendered for a prompt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Context {
    /// One line per hit, most useful first.
    pub text: String,
    /// The hits that made it into `text`, in order.
    pub hits: Vec<Hit>,
    /// Estimated tokens of `text` (see [`estimate_tokens`]).
    pub tokens: usize,
}

/// cairn's token estimate: one token per 4 bytes of UTF-8, rounded up, plus one per
/// line. Close to what GPT- and Llama-family tokenizers give for English prose; a
/// caller with a real tokenizer can re-measure `Context::text`.
pub fn estimate_tokens(text: &str) -> usize {
    text.len().div_ceil(4) + 1
}

/// `[agent, date]` for each of `hits` that still exists (see
/// [`crate::SearchOptions::provenance`]), one statement per kind.
pub(crate) fn provenance_labels(
    conn: &Connection,
    hits: &[Hit],
) -> Result<HashMap<Target, String>> {
    let targets: Vec<Target> = hits.iter().map(|h| h.target).collect();
    Ok(provenance_of(conn, &targets)?
        .into_iter()
        .map(|(target, p)| (target, p.provenance_label()))
        .collect())
}

/// Takes hits in order, skipping duplicate texts and hits that no longer fit, until the
/// budget is spent. A hit with a label (its provenance) has it before its text.
pub(crate) fn render(hits: Vec<Hit>, budget: usize, labels: &HashMap<Target, String>) -> Context {
    let mut seen = HashSet::new();
    let mut lines = Vec::new();
    let mut kept = Vec::new();
    let mut used = 0;
    for hit in hits {
        let text = hit.text.replace('\n', " ");
        let line = match labels.get(&hit.target) {
            Some(label) => format!("- {label} {text}"),
            None => format!("- {text}"),
        };
        let cost = estimate_tokens(&line);
        if used + cost > budget || !seen.insert(hit.text.clone()) {
            continue;
        }
        used += cost;
        lines.push(line);
        kept.push(hit);
    }
    Context {
        text: lines.join("\n"),
        hits: kept,
        tokens: used,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ChunkId;
    use crate::retrieve::Target;

    fn hit(i: i64, text: &str) -> Hit {
        Hit {
            target: Target::Chunk(ChunkId::from_raw(i)),
            score: 1.0,
            text: text.into(),
            why: vec![],
        }
    }

    #[test]
    fn budget_order_and_duplicates() {
        let hits = vec![
            hit(1, "first fact"),
            hit(2, "first fact"),
            hit(3, &"long ".repeat(100)),
            hit(4, "short"),
        ];
        let none = HashMap::new();
        let ctx = render(hits, 12, &none);
        assert_eq!(ctx.text, "- first fact\n- short");
        assert_eq!(ctx.hits.len(), 2);
        assert!(ctx.tokens <= 12);
        assert_eq!(render(vec![hit(1, "x")], 0, &none).hits.len(), 0);
    }

    #[test]
    fn labels_go_before_the_text_and_count_against_the_budget() {
        let labels = HashMap::from([(
            Target::Chunk(ChunkId::from_raw(1)),
            "[mail-agent, 2026-11-30]".to_owned(),
        )]);
        let hits = vec![hit(1, "Acme acquired Widget"), hit(2, "unlabelled")];
        let ctx = render(hits.clone(), 100, &labels);
        assert_eq!(
            ctx.text,
            "- [mail-agent, 2026-11-30] Acme acquired Widget\n- unlabelled"
        );
        assert_eq!(
            ctx.tokens,
            estimate_tokens("- [mail-agent, 2026-11-30] Acme acquired Widget")
                + estimate_tokens("- unlabelled")
        );
        // The label's cost can push a line out of a budget its bare text fits in.
        let bare = estimate_tokens("- Acme acquired Widget");
        assert_eq!(
            render(hits[..1].to_vec(), bare, &HashMap::new()).hits.len(),
            1
        );
        assert_eq!(render(hits[..1].to_vec(), bare, &labels).hits.len(), 0);
    }
}
