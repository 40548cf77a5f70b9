//! The reference memory server's calls over cairn (`Memory::knowledge_graph`), including
//! the reference server's known failures as regression tests.

use cairn::{Error, KgEntity, KgObservations, KgRelation, Memory, Page};

fn entity(name: &str, kind: &str, observations: &[&str]) -> KgEntity {
    KgEntity {
        name: name.into(),
        entity_type: kind.into(),
        observations: observations.iter().map(|s| s.to_string()).collect(),
    }
}

fn relation(from: &str, kind: &str, to: &str) -> KgRelation {
    KgRelation {
        from: from.into(),
        to: to.into(),
        relation_type: kind.into(),
    }
}

#[test]
fn variant_names_are_one_entity() {
    let memory = Memory::ephemeral().unwrap();
    let kg = memory.knowledge_graph();
    let stored = kg
        .create_entities(&[
            entity("Acme Corp", "organization", &[]),
            entity("acme corp", "company", &[]),
            entity("ＡＣＭＥ  Corp", "", &["Founded in 1999"]),
        ])
        .unwrap();
    assert_eq!(stored.len(), 1, "one entity reported: {stored:?}");
    assert_eq!(stored[0].name, "Acme Corp");
    assert_eq!(stored[0].entity_type, "organization");
    assert_eq!(stored[0].observations, ["Founded in 1999"]);
    assert_eq!(memory.stats().unwrap().entities, 1);
    assert_eq!(kg.read_graph(None).unwrap().entities.len(), 1);
}

#[test]
fn a_repeated_create_adds_its_new_observations() {
    let kg = Memory::ephemeral().unwrap().knowledge_graph();
    kg.create_entities(&[entity("Ann", "person", &["Likes tea"])])
        .unwrap();
    let again = kg
        .create_entities(&[entity("ANN", "robot", &["Likes tea", "Works at Acme"])])
        .unwrap();
    assert_eq!(
        again[0].entity_type, "person",
        "the first writer's type stays"
    );
    let graph = kg.open_nodes(&["ann".to_string()]).unwrap();
    assert_eq!(
        graph.entities[0].observations,
        ["Likes tea", "Works at Acme"]
    );
}

#[test]
fn add_observations_finds_the_entity_by_any_spelling() {
    let kg = Memory::ephemeral().unwrap().knowledge_graph();
    kg.create_entities(&[entity("Acme Corp", "organization", &["Old fact"])])
        .unwrap();
    let added = kg
        .add_observations(&[KgObservations {
            entity_name: "ACME CORP".into(),
            contents: vec!["Old fact".into(), "New fact".into()],
        }])
        .unwrap();
    assert_eq!(added[0].entity_name, "Acme Corp");
    assert_eq!(added[0].added_observations, ["New fact"], "only new texts");
    let graph = kg.open_nodes(&["Acme Corp".to_string()]).unwrap();
    assert_eq!(graph.entities[0].observations, ["Old fact", "New fact"]);
}

#[test]
fn add_observations_to_an_unknown_entity_writes_nothing() {
    let memory = Memory::ephemeral().unwrap();
    let kg = memory.knowledge_graph();
    kg.create_entities(&[entity("Known", "", &[])]).unwrap();
    let before = memory.stats().unwrap();
    let err = kg
        .add_observations(&[
            KgObservations {
                entity_name: "Known".into(),
                contents: vec!["fact".into()],
            },
            KgObservations {
                entity_name: "Unknown".into(),
                contents: vec!["fact".into()],
            },
        ])
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(
        memory.stats().unwrap(),
        before,
        "nothing of the call written"
    );
}

#[test]
fn invalid_input_names_the_item_and_writes_nothing() {
    let memory = Memory::ephemeral().unwrap();
    let kg = memory.knowledge_graph();
    let err = kg
        .create_entities(&[entity("Fine", "", &[]), entity("  ", "", &[])])
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidBatchItem { index: 1, .. }),
        "{err}"
    );
    let err = kg.create_relations(&[relation("A", "", "B")]).unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert_eq!(memory.stats().unwrap().entities, 0);
}

#[test]
fn relations_create_missing_endpoints_and_match_normalized() {
    let memory = Memory::ephemeral().unwrap();
    let kg = memory.knowledge_graph();
    let stored = kg
        .create_relations(&[
            relation("Ann", "works at", "Acme Corp"),
            relation("ann", "WORKS_AT", "acme corp"),
        ])
        .unwrap();
    assert_eq!(stored, [relation("Ann", "works at", "Acme Corp")]);
    assert_eq!(memory.stats().unwrap().relations, 1);
    assert_eq!(memory.stats().unwrap().entities, 2);

    let deleted = kg
        .delete_relations(&[
            relation("ANN", "works-at", "ＡＣＭＥ corp"),
            relation("Ann", "knows", "Bob"),
        ])
        .unwrap();
    assert_eq!(deleted, 1);
    assert_eq!(memory.stats().unwrap().relations, 0);
}

#[test]
fn deletes_skip_unknown_names() {
    let memory = Memory::ephemeral().unwrap();
    let kg = memory.knowledge_graph();
    kg.create_entities(&[entity("A", "", &["one", "two"]), entity("B", "", &[])])
        .unwrap();
    kg.create_relations(&[relation("A", "r", "B")]).unwrap();
    let removed = kg
        .delete_observations(&[KgObservations {
            entity_name: "a".into(),
            contents: vec!["one".into(), "three".into()],
        }])
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(
        kg.delete_entities(&["b".to_string(), "nobody".to_string()])
            .unwrap(),
        1
    );
    let graph = kg.read_graph(None).unwrap();
    assert_eq!(graph.entities, [entity("A", "", &["two"])]);
    assert!(graph.relations.is_empty(), "B's relation went with it");
}

#[test]
fn read_graph_pages_cover_everything_once() {
    let kg = Memory::ephemeral().unwrap().knowledge_graph();
    let names: Vec<String> = (0..25).map(|i| format!("E{i}")).collect();
    let entities: Vec<KgEntity> = names.iter().map(|n| entity(n, "", &[])).collect();
    kg.create_entities(&entities).unwrap();
    let relations: Vec<KgRelation> = names
        .windows(2)
        .map(|w| relation(&w[0], "next", &w[1]))
        .collect();
    kg.create_relations(&relations).unwrap();

    let (mut seen_entities, mut seen_relations, mut cursor) = (Vec::new(), Vec::new(), None);
    let mut pages = 0;
    loop {
        let page = kg
            .read_graph(Some(&Page {
                cursor: cursor.clone(),
                limit: 10,
            }))
            .unwrap();
        pages += 1;
        assert!(page.entities.len() <= 10);
        seen_entities.extend(page.entities.into_iter().map(|e| e.name));
        seen_relations.extend(page.relations);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen_entities, names);
    assert_eq!(seen_relations, relations);
    let bad = kg.read_graph(Some(&Page {
        cursor: Some("not a cursor".into()),
        limit: 10,
    }));
    assert!(bad.unwrap_err().is_invalid_input());
}

#[test]
fn search_nodes_is_ranked_and_bounded() {
    let kg = Memory::ephemeral().unwrap().knowledge_graph();
    let mut entities = vec![entity(
        "Widget Inc",
        "organization",
        &["Makes blue widgets in Zürich"],
    )];
    for i in 0..30 {
        entities.push(entity(&format!("Person {i}"), "person", &["Likes widgets"]));
    }
    kg.create_entities(&entities).unwrap();
    kg.create_relations(&[relation("Person 1", "works at", "Widget Inc")])
        .unwrap();
    let found = kg.search_nodes("blue widgets zurich", 5).unwrap();
    assert_eq!(found.entities.len(), 5, "bounded by the limit");
    assert_eq!(found.entities[0].name, "Widget Inc", "ranked: {found:?}");
    let all = kg.search_nodes("widgets", 100).unwrap();
    assert!(all.entities.len() >= 31);
    assert!(
        all.relations
            .contains(&relation("Person 1", "works at", "Widget Inc")),
        "relations among the found entities come with them"
    );
}

#[test]
fn open_nodes_returns_every_relation_touching_the_entities() {
    let kg = Memory::ephemeral().unwrap().knowledge_graph();
    kg.create_relations(&[
        relation("Bob", "knows", "Alice"),
        relation("Alice", "works at", "Acme"),
        relation("Bob", "works at", "Acme"),
    ])
    .unwrap();
    // As the reference server answers: one end among the opened entities is enough.
    let opened = kg.open_nodes(&["alice".to_string()]).unwrap();
    assert_eq!(opened.entities.len(), 1);
    assert_eq!(
        opened.relations,
        [
            relation("Bob", "knows", "Alice"),
            relation("Alice", "works at", "Acme")
        ]
    );
    assert!(!opened.relations_truncated);
    // A relation between two opened entities is listed once.
    let both = kg
        .open_nodes(&["Alice".to_string(), "Bob".to_string()])
        .unwrap();
    assert_eq!(both.relations.len(), 3, "{both:?}");
    let found = kg.search_nodes("Alice", 1).unwrap();
    assert_eq!(found.entities[0].name, "Alice");
    assert!(
        found.relations.contains(&relation("Bob", "knows", "Alice")),
        "{found:?}"
    );
}

#[test]
fn a_hub_s_relations_are_capped_and_marked() {
    let kg = Memory::ephemeral().unwrap().knowledge_graph();
    let max = cairn::KnowledgeGraph::MAX_NODE_RELATIONS;
    let spokes: Vec<KgRelation> = (0..=max)
        .map(|i| relation("Hub", "links", &format!("Spoke {i}")))
        .collect();
    kg.create_relations(&spokes).unwrap();
    // The most mentioned relation makes the cut whatever its age.
    kg.create_relations(&[relation("Hub", "links", &format!("Spoke {max}"))])
        .unwrap();
    let opened = kg.open_nodes(&["hub".to_string()]).unwrap();
    assert_eq!(opened.relations.len(), max);
    assert!(opened.relations_truncated);
    assert!(opened.relations.contains(&spokes[max]));
    let json = serde_json::to_value(&opened).unwrap();
    assert_eq!(json["relationsTruncated"], true);
    // Exactly at the cap is not truncated.
    kg.delete_relations(&spokes[..1]).unwrap();
    let opened = kg.open_nodes(&["hub".to_string()]).unwrap();
    assert_eq!(opened.relations.len(), max);
    assert!(!opened.relations_truncated);
    let json = serde_json::to_value(&opened).unwrap();
    assert!(json.get("relationsTruncated").is_none());
}
