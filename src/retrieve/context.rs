//! Rendering hits as prompt text within a token budget.

use std::collections::HashSet;

use crate::retrieve::Hit;

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

/// Takes hits in order, skipping duplicate texts and hits that no longer fit, until the
/// budget is spent.
pub(crate) fn render(hits: Vec<Hit>, budget: usize) -> Context {
    let mut seen = HashSet::new();
    let mut lines = Vec::new();
    let mut kept = Vec::new();
    let mut used = 0;
    for hit in hits {
        let line = format!("- {}", hit.text.replace('\n', " "));
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
        let ctx = render(hits, 12);
        assert_eq!(ctx.text, "- first fact\n- short");
        assert_eq!(ctx.hits.len(), 2);
        assert!(ctx.tokens <= 12);
        assert_eq!(render(vec![hit(1, "x")], 0).hits.len(), 0);
    }
}
