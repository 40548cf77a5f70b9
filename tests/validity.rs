//! Validity and provenance in search and context: relations whose validity ended are
//! left out by default and shown, marked, with history; context lines can say who wrote
//! them and when.

mod common;

use cairn::{Episode, HitKind, Memory, SearchOptions, Target, Timestamp, Triple};

/// 2026-01-05T00:00:00Z and 2025-03-01T00:00:00Z, in unix milliseconds.
const JAN_5_2026: i64 = 1_767_571_200_000;
const MAR_1_2025: i64 = 1_740_787_200_000;

/// The new user's memory: Ann worked at Acme (invalidated), works at Beta now; Acme
/// acquired Widget; a relation that only starts in the future.
fn history() -> (Memory, cairn::RelationId, cairn::RelationId) {
    let m = Memory::ephemeral_with(common::options()).unwrap();
    let old = m
        .add_triple(
            Triple::new("Ann", "works at", "Acme").valid_from(Timestamp::from_millis(MAR_1_2025)),
        )
        .unwrap();
    m.invalidate(old, Timestamp::from_millis(JAN_5_2026))
        .unwrap();
    let ended = m
        .add_triple(
            Triple::new("Ann", "lived in", "Paris").valid_to(Timestamp::from_millis(MAR_1_2025)),
        )
        .unwrap();
    m.add_triple(
        Triple::new("Ann", "works at", "Beta").valid_from(Timestamp::from_millis(JAN_5_2026)),
    )
    .unwrap();
    m.add_triple(("Acme", "acquired", "Widget")).unwrap();
    m.sync().unwrap();
    (m, old, ended)
}

fn relation_texts(m: &Memory, query: &str, options: &SearchOptions) -> Vec<String> {
    m.search(
        query,
        &options.clone().kinds(&[HitKind::Relation]).limit(20),
    )
    .unwrap()
    .into_iter()
    .map(|h| h.text)
    .collect()
}

#[test]
fn ended_relations_are_hidden_from_search_by_default() {
    let (m, old, ended) = history();
    let hits = m
        .search("Ann works at Acme", &SearchOptions::new().limit(20))
        .unwrap();
    assert!(!hits.is_empty());
    for hit in &hits {
        assert_ne!(hit.target, Target::Relation(old), "{hits:?}");
        assert_ne!(hit.target, Target::Relation(ended), "{hits:?}");
    }
    let texts = relation_texts(&m, "Ann", &SearchOptions::new());
    assert!(texts.contains(&"Ann works at Beta".to_owned()), "{texts:?}");
    assert!(
        !texts
            .iter()
            .any(|t| t.starts_with("Ann works at Acme") || t.contains("Paris")),
        "{texts:?}"
    );
    // Graph expansion does not bring them back either.
    let texts = relation_texts(&m, "Beta", &SearchOptions::new().depth(2));
    assert!(
        !texts.iter().any(|t| t.starts_with("Ann works at Acme")),
        "{texts:?}"
    );
}

#[test]
fn history_shows_ended_relations_marked_with_their_validity() {
    let (m, old, _) = history();
    let options = SearchOptions::new().include_history(true);
    let texts = relation_texts(&m, "Ann", &options);
    for want in [
        "Ann works at Acme (from 2025-03-01 until 2026-01-05)",
        "Ann lived in Paris (until 2025-03-01)",
        "Ann works at Beta (from 2026-01-05)",
    ] {
        assert!(texts.contains(&want.to_owned()), "{want} not in {texts:?}");
    }
    // A relation with no known bound is not marked.
    let texts = relation_texts(&m, "acquired Widget", &options);
    assert!(
        texts.contains(&"Acme acquired Widget".to_owned()),
        "{texts:?}"
    );
    let hits = m.search("Ann works at Acme", &options).unwrap();
    assert!(
        hits.iter().any(|h| h.target == Target::Relation(old)),
        "{hits:?}"
    );
}

#[test]
fn valid_at_decides_instead_of_the_default() {
    let (m, old, _) = history();
    // In mid-2025 Ann worked at Acme, and not yet at Beta.
    let mid_2025 = Timestamp::from_millis(MAR_1_2025 + 100 * 86_400_000);
    let texts = relation_texts(&m, "Ann works", &SearchOptions::new().valid_at(mid_2025));
    assert!(texts.contains(&"Ann works at Acme".to_owned()), "{texts:?}");
    assert!(
        !texts.contains(&"Ann works at Beta".to_owned()),
        "{texts:?}"
    );
    let hits = m
        .search("Acme", &SearchOptions::new().valid_at(Timestamp::now()))
        .unwrap();
    assert!(
        !hits.iter().any(|h| h.target == Target::Relation(old)),
        "{hits:?}"
    );
}

#[test]
fn context_leaves_out_the_invalidated_fact_unless_history_is_asked_for() {
    let (m, _, _) = history();
    let context = m
        .context("Ann works at Acme", &SearchOptions::new(), 500)
        .unwrap();
    assert!(
        context.text.contains("Ann works at Beta"),
        "{}",
        context.text
    );
    assert!(
        !context.text.contains("Ann works at Acme"),
        "{}",
        context.text
    );
    let context = m
        .context(
            "Ann works at Acme",
            &SearchOptions::new().include_history(true),
            500,
        )
        .unwrap();
    assert!(
        context
            .text
            .contains("- Ann works at Acme (from 2025-03-01 until 2026-01-05)"),
        "{}",
        context.text
    );
    assert!(
        context
            .text
            .contains("- Ann works at Beta (from 2026-01-05)"),
        "{}",
        context.text
    );
}

#[test]
fn hidden_relations_do_not_leave_the_answer_short() {
    // Sixty ended facts about one hub outrank the five current ones for the query; the
    // search must still fill its limit with what holds now.
    let m = Memory::ephemeral_with(common::options()).unwrap();
    let past = Timestamp::from_millis(MAR_1_2025);
    for i in 0..60 {
        let name = format!("Former{i}");
        m.add_triple(Triple::new(name.as_str(), "worked at", "Acme Corp").valid_to(past))
            .unwrap();
    }
    for i in 0..5 {
        let name = format!("Current{i}");
        m.add_triple((name.as_str(), "works at", "Acme Corp"))
            .unwrap();
    }
    m.sync().unwrap();
    let options = SearchOptions::new()
        .kinds(&[HitKind::Relation])
        .depth(0)
        .limit(5);
    let texts: Vec<String> = m
        .search("Acme Corp worked works", &options)
        .unwrap()
        .into_iter()
        .map(|h| h.text)
        .collect();
    assert_eq!(texts.len(), 5, "{texts:?}");
    assert!(texts.iter().all(|t| t.starts_with("Current")), "{texts:?}");
}

#[test]
fn provenance_labels_context_lines_with_agent_and_date() {
    let m = Memory::ephemeral_with(common::options()).unwrap();
    let mail = m
        .episode(&Episode::new("mail-agent").at(Timestamp::from_millis(JAN_5_2026)))
        .unwrap();
    mail.add_triple(("Acme Corp", "acquired", "Widget Inc"))
        .unwrap();
    m.add_triple(("Acme Corp", "based in", "Lyon")).unwrap();
    m.sync().unwrap();
    let options = SearchOptions::new().kinds(&[HitKind::Relation]);
    let plain = m.context("Acme Corp", &options, 500).unwrap();
    assert!(
        plain.text.contains("- Acme Corp acquired Widget Inc"),
        "{}",
        plain.text
    );
    assert!(!plain.text.contains('['), "{}", plain.text);

    let labelled = m
        .context("Acme Corp", &options.clone().provenance(true), 500)
        .unwrap();
    // Both were written today (the episode's own time says when its source happened,
    // not when cairn was told).
    let today = today_utc();
    let lines: Vec<&str> = labelled.text.lines().collect();
    assert_eq!(lines.len(), 2, "{}", labelled.text);
    let mail_line = format!("- [mail-agent, {today}] Acme Corp acquired Widget Inc");
    assert!(lines.contains(&mail_line.as_str()), "{}", labelled.text);
    // Written outside any episode: only the date.
    let plain_line = format!("- [{today}] Acme Corp based in Lyon");
    assert!(lines.contains(&plain_line.as_str()), "{}", labelled.text);
    // The hits themselves are unchanged, and the labels are paid for in tokens.
    assert_eq!(labelled.hits, plain.hits);
    assert!(labelled.tokens > plain.tokens);
}

/// Today's UTC date as SQLite's calendar gives it.
fn today_utc() -> String {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.query_row("SELECT date('now')", [], |r| r.get(0))
        .unwrap()
}
