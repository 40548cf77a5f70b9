//! The lexical channel: per-kind BM25 statistics, CJK text, stop-word-only queries, and
//! an exact name ranking its entity first.

mod common;

use common::texts;

use cairn::{Document, HitKind, KgEntity, KgRelation, Memory, SearchOptions, Target};

fn memory() -> Memory {
    Memory::ephemeral_with(common::options()).unwrap()
}

fn bm25(kinds: &[HitKind], limit: usize) -> SearchOptions {
    SearchOptions::new().bm25_only().kinds(kinds).limit(limit)
}

fn ranking(memory: &Memory, query: &str) -> Vec<(Target, f32)> {
    memory
        .search(query, &bm25(&[HitKind::Chunk], 20))
        .unwrap()
        .into_iter()
        .map(|h| (h.target, h.score))
        .collect()
}

#[test]
fn bare_entities_leave_a_chunk_ranking_unchanged() {
    let m = memory();
    let topics = ["garden", "kitchen", "harbour", "library", "market"];
    for i in 0..40 {
        let topic = topics[i % topics.len()];
        let text = format!(
            "Note {i}: the {topic} was busy today. {} Later we walked home past the {}.",
            "Someone mentioned the weather twice. ".repeat(i % 4),
            topics[(i + 2) % topics.len()],
        );
        m.add_document(&Document::new(text.as_str())).unwrap();
    }
    m.sync().unwrap();
    let queries = ["busy garden", "walked past the harbour", "weather kitchen"];
    let before: Vec<_> = queries.iter().map(|q| ranking(&m, q)).collect();
    for i in 0..1_000 {
        m.ensure_entity(&format!("Entity {i}")).unwrap();
    }
    m.sync().unwrap();
    for (query, before) in queries.iter().zip(&before) {
        let after = ranking(&m, query);
        assert!(before.len() >= 5, "{query}: {before:?}");
        assert_eq!(
            after.iter().map(|h| h.0).collect::<Vec<_>>(),
            before.iter().map(|h| h.0).collect::<Vec<_>>(),
            "{query}: same order"
        );
        for ((_, a), (_, b)) in after.iter().zip(before) {
            assert!((a - b).abs() <= 1e-4 * b.abs(), "{query}: {a} vs {b}");
        }
    }
}

#[test]
fn cjk_text_is_found_by_its_words_in_chunks_observations_and_names() {
    let m = memory();
    m.add_document(&Document::new("我每天早上喝绿茶。"))
        .unwrap();
    m.add_document(&Document::new("茶叶是绿色的。")).unwrap();
    m.add_document(&Document::new("東京タワーに行きました。"))
        .unwrap();
    m.add_document(&Document::new("서울에서 김치를 먹었다."))
        .unwrap();
    m.observe("小明", "他最喜欢的饮料是乌龙茶").unwrap();
    m.observe("Yuki", "大阪で生まれました").unwrap();
    m.observe("Minji", "부산에서 일해요").unwrap();
    m.sync().unwrap();
    let chunks = bm25(&[HitKind::Chunk], 10);
    assert_eq!(texts(&m, "绿茶", &chunks), ["我每天早上喝绿茶。"]);
    assert_eq!(texts(&m, "東京", &chunks), ["東京タワーに行きました。"]);
    assert_eq!(texts(&m, "김치", &chunks), ["서울에서 김치를 먹었다."]);
    // A single character is a word too; both texts hold 茶.
    assert_eq!(texts(&m, "茶", &chunks).len(), 2);
    let observations = bm25(&[HitKind::Observation], 10);
    assert_eq!(
        texts(&m, "乌龙茶", &observations),
        ["小明: 他最喜欢的饮料是乌龙茶"]
    );
    assert_eq!(
        texts(&m, "大阪", &observations),
        ["Yuki: 大阪で生まれました"]
    );
    assert_eq!(texts(&m, "부산", &observations), ["Minji: 부산에서 일해요"]);
    let entities = bm25(&[HitKind::Entity], 10);
    assert_eq!(texts(&m, "小明", &entities), ["小明"]);
    assert_eq!(texts(&m, "小明喜欢什么", &entities), ["小明"]);
}

#[test]
fn cjk_names_are_linked_to_the_chunks_mentioning_them() {
    let m = memory();
    // One entity before its chunk (the automaton links it), one after (the index
    // proposes the chunk); Korean with a particle attached.
    let tokyo = m.ensure_entity("东京").unwrap();
    let (_, before) = m
        .add_document(&Document::new("我下个月去东京出差。"))
        .unwrap();
    let (_, after) = m
        .add_document(&Document::new("서울에서 김치를 먹었다."))
        .unwrap();
    m.sync().unwrap();
    let seoul = m.ensure_entity("서울").unwrap();
    m.sync().unwrap();
    assert_eq!(m.mentioned_by(tokyo, 10).unwrap(), before);
    assert_eq!(m.mentioned_by(seoul, 10).unwrap(), after);
    // A query naming the entity focuses on what mentions it.
    let hits = m
        .search("东京出差", &SearchOptions::new().kinds(&[HitKind::Chunk]))
        .unwrap();
    assert!(
        hits[0]
            .why
            .iter()
            .any(|w| matches!(w, cairn::Reason::Bm25 { .. })),
        "{hits:?}"
    );
}

#[test]
fn a_query_of_stop_words_only_searches_them() {
    let m = memory();
    m.add_document(&Document::new("To be or not to be, that is the question."))
        .unwrap();
    m.add_document(&Document::new("We saw The Who live in 1979."))
        .unwrap();
    m.add_document(&Document::new("Quarterly revenue grew by four percent."))
        .unwrap();
    m.observe("Hamlet", "Says to be or not to be").unwrap();
    m.sync().unwrap();
    let chunks = bm25(&[HitKind::Chunk], 10);
    assert_eq!(
        texts(&m, "to be or not to be", &chunks)[0],
        "To be or not to be, that is the question."
    );
    assert_eq!(
        texts(&m, "the who", &chunks)[0],
        "We saw The Who live in 1979."
    );
    let everything = texts(&m, "to be or not to be", &SearchOptions::new());
    assert!(
        everything
            .iter()
            .any(|t| t == "Hamlet: Says to be or not to be"),
        "{everything:?}"
    );
    assert!(texts(&m, "   ", &chunks).is_empty());
}

/// 50 entities whose names overlap ("Alice", "Alice Smith", "Alice's Bakery"), each with
/// relations and observations naming the others.
fn crowded_names() -> (Memory, Vec<String>) {
    let m = memory();
    let firsts = ["Alice", "Bob", "Carol", "Dave", "Erin"];
    let mut names = Vec::new();
    for first in firsts {
        names.push(first.to_string());
        for second in [
            "Smith", "Jones", "Baker", "Stone", "Wood", "Hill", "Lee", "Moore",
        ] {
            names.push(format!("{first} {second}"));
        }
        names.push(format!("{first}'s Bakery"));
    }
    assert_eq!(names.len(), 50);
    let kg = m.knowledge_graph();
    let entities: Vec<KgEntity> = names
        .iter()
        .enumerate()
        .map(|(i, name)| KgEntity {
            name: name.clone(),
            entity_type: "person".into(),
            observations: vec![format!(
                "{name} often meets {} and {}",
                names[(i + 1) % 50],
                names[(i + 7) % 50]
            )],
        })
        .collect();
    kg.create_entities(&entities).unwrap();
    let relations: Vec<KgRelation> = (0..50)
        .flat_map(|i| {
            [(i + 1) % 50, (i + 11) % 50, (i + 25) % 50].map(|j| KgRelation {
                from: names[j].clone(),
                to: names[i].clone(),
                relation_type: format!("knows {}", names[i]),
            })
        })
        .collect();
    kg.create_relations(&relations).unwrap();
    m.sync().unwrap();
    (m, names)
}

#[test]
fn an_exact_name_ranks_its_entity_first() {
    let (m, names) = crowded_names();
    let kg = m.knowledge_graph();
    for name in &names {
        let id = m.resolve(name).unwrap().unwrap();
        for options in [
            SearchOptions::new().limit(1),
            SearchOptions::new().bm25_only().limit(1),
            SearchOptions::new().kinds(&[HitKind::Entity]).limit(1),
        ] {
            let hits = m.search(name, &options).unwrap();
            assert_eq!(hits[0].target, Target::Entity(id), "{name}: {hits:?}");
        }
        let found = kg.search_nodes(name, 1).unwrap();
        assert_eq!(found.entities.len(), 1);
        assert_eq!(&found.entities[0].name, name);
        // Any spelling of the name is the name.
        let shouted = kg.search_nodes(&name.to_uppercase(), 1).unwrap();
        assert_eq!(&shouted.entities[0].name, name);
    }
}
