//! Ranking a user expects: facts asserted more often outrank one-off facts about the same
//! hub, and the top of an answer is not ten near-identical lines about one hub.

use cairn::{Memory, SearchOptions};

fn acme() -> Memory {
    let memory = Memory::ephemeral().unwrap();
    for n in 0..50 {
        memory
            .add_triple((format!("Person {n}").as_str(), "works at", "Acme Corp"))
            .unwrap();
    }
    for _ in 0..5 {
        memory
            .add_triple(("Acme Corp", "acquired", "Widget Inc"))
            .unwrap();
    }
    memory
        .add_triple(("Acme Corp", "based in", "Springfield"))
        .unwrap();
    memory.sync().unwrap();
    memory
}

#[test]
fn a_hub_answer_shows_the_hub_and_its_distinct_facts_first() {
    let memory = acme();
    let context = memory
        .context(
            "What do we know about Acme Corp?",
            &SearchOptions::new(),
            200,
        )
        .unwrap();
    let lines: Vec<&str> = context.text.lines().collect();
    let top5 = &lines[..lines.len().min(5)];
    assert!(
        top5.iter()
            .any(|l| l.contains("Acme Corp acquired Widget Inc")),
        "{lines:#?}"
    );
    assert!(
        top5.contains(&"- Acme Corp"),
        "the entity itself is near the top: {lines:#?}"
    );
    let works = top5.iter().filter(|l| l.contains("works at")).count();
    assert!(
        works <= 2,
        "{works} of the top 5 are 'works at' lines: {lines:#?}"
    );
    // The rest of the hub's facts are still there further down.
    assert!(
        lines.iter().filter(|l| l.contains("works at")).count() >= 3,
        "{lines:#?}"
    );
}

#[test]
fn a_fact_asserted_more_often_outranks_a_one_off_fact() {
    let memory = Memory::ephemeral().unwrap();
    // Written first, so it would win a tie by id.
    memory.add_triple(("Ann", "likes", "tea")).unwrap();
    for _ in 0..4 {
        memory.add_triple(("Ann", "likes", "coffee")).unwrap();
    }
    memory.sync().unwrap();
    let hits = memory
        .search(
            "what does Ann like",
            &SearchOptions::new().kinds(&[cairn::HitKind::Relation]),
        )
        .unwrap();
    let texts: Vec<&str> = hits.iter().map(|h| h.text.as_str()).collect();
    assert_eq!(texts.first(), Some(&"Ann likes coffee"), "{texts:?}");
}
