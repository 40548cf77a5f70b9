//! JSON Lines import and export: cairn's own format (exact round trip) and the reference
//! server's memory.jsonl (both ways), bad lines, skipping.

use cairn::{Episode, Error, ImportOptions, JsonlFormat, KgEntity, KgRelation, Memory, Unit};

fn export(memory: &Memory, format: JsonlFormat) -> String {
    let mut out = Vec::new();
    memory.export_jsonl(&mut out, format).unwrap();
    String::from_utf8(out).unwrap()
}

/// The lines after the header, which carries the export time.
fn body(export: &str) -> Vec<&str> {
    export.lines().skip(1).collect()
}

fn populated() -> Memory {
    let memory = Memory::ephemeral().unwrap();
    let mail = memory
        .episode(
            &Episode::new("mail-agent")
                .source("inbox/4711")
                .metadata(serde_json::json!({"thread": 7})),
        )
        .unwrap();
    mail.add_triple(("Acme Corp", "acquired", "Widget Inc"))
        .unwrap();
    mail.add_triple(("acme corp", "acquired", "Widget Inc"))
        .unwrap();
    mail.observe("Widget Inc", "Makes widgets").unwrap();
    let acme = memory.resolve("Acme Corp").unwrap().unwrap();
    memory.add_alias(acme, "ACME").unwrap();
    memory.set_kind(acme, "organization").unwrap();
    memory
        .add_units(
            "chat",
            &[Unit::new("Ann: Acme bought Widget").metadata(serde_json::json!({"id": "m1"}))],
        )
        .unwrap();
    let doomed = memory.ensure_entity("Doomed").unwrap();
    memory.delete_entity(doomed).unwrap();
    memory
}

#[test]
fn cairn_format_round_trips_exactly() {
    let original = populated();
    let first = export(&original, JsonlFormat::Cairn);
    assert!(first.starts_with("{\"type\":\"cairn\""), "{first}");

    let copy = Memory::ephemeral().unwrap();
    let report = copy
        .import_jsonl(first.as_bytes(), &ImportOptions::new())
        .unwrap();
    assert_eq!(report.format, "cairn");
    assert_eq!(report.skipped, 0);
    let second = export(&copy, JsonlFormat::Cairn);
    assert_eq!(body(&first), body(&second), "same rows, ids and provenance");
    assert_eq!(copy.stats().unwrap(), original.stats().unwrap());

    // The copy is a working memory: names resolve, provenance reads back, search works.
    let acme = copy.resolve("ａｃｍｅ").unwrap().expect("alias kept");
    assert_eq!(copy.outgoing(acme).unwrap()[0].mentions, 2);
    assert_eq!(copy.written_by("mail-agent", 100).unwrap().len(), 5);
    copy.sync().unwrap();
    let hits = copy
        .search("widgets", &cairn::SearchOptions::new())
        .unwrap();
    assert!(hits.iter().any(|h| h.text.contains("Makes widgets")));
    // New writes continue the change log after the imported one.
    copy.add_triple(("Ann", "knows", "Bob")).unwrap();
    assert!(copy.last_seq().unwrap() > original.last_seq().unwrap());
}

#[test]
fn cairn_format_needs_an_empty_memory() {
    let original = populated();
    let text = export(&original, JsonlFormat::Cairn);
    let target = Memory::ephemeral().unwrap();
    target.add_triple(("X", "r", "Y")).unwrap();
    let before = target.stats().unwrap();
    let err = target
        .import_jsonl(text.as_bytes(), &ImportOptions::new())
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");
    assert_eq!(target.stats().unwrap(), before);
}

#[test]
fn a_newer_export_is_refused() {
    let text = "{\"type\":\"cairn\",\"format\":1,\"schema\":99,\"exported_at\":0}\n";
    let memory = Memory::ephemeral().unwrap();
    let err = memory
        .import_jsonl(text.as_bytes(), &ImportOptions::new())
        .unwrap_err();
    assert!(matches!(err, Error::NewerSchema { found: 99, .. }), "{err}");
}

#[test]
fn a_broken_cairn_row_names_its_line() {
    let original = populated();
    let text = export(&original, JsonlFormat::Cairn);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    // An alias whose key is not its name's key would make the name unreachable.
    let alias = lines
        .iter()
        .position(|l| l.starts_with("{\"type\":\"alias\"") && l.contains("\"key\":\"acme\""))
        .unwrap();
    lines[alias] = lines[alias].replace("\"key\":\"acme\"", "\"key\":\"wrong\"");
    assert!(lines[alias].contains("wrong"), "{}", lines[alias]);
    let memory = Memory::ephemeral().unwrap();
    let err = memory
        .import_jsonl(lines.join("\n").as_bytes(), &ImportOptions::new())
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidLine { line, .. } if line == alias as u64 + 1),
        "{err}"
    );
    assert_eq!(memory.stats().unwrap().entities, 0, "nothing written");
}

const REFERENCE: &str = r#"{"type":"entity","name":"Acme Corp","entityType":"organization","observations":["Founded in 1999"]}
{"type":"entity","name":"acme corp","entityType":"company","observations":["Based in Springfield"]}
{"type":"entity","name":"ＡＣＭＥ  Corp","entityType":"organization","observations":["Founded in 1999"]}
{"type":"entity","name":"Widget Inc","entityType":"organization","observations":[]}
{"type":"entity","name":"Widget Inc","entityType":"organization","observations":[]}
{"type":"relation","from":"Acme Corp","to":"Widget Inc","relationType":"acquired"}
{"type":"relation","from":"ACME CORP","to":"widget inc","relationType":"acquired"}
{"type":"relation","from":"Widget Inc","to":"Zürich","relationType":"based in"}
"#;

#[test]
fn memory_jsonl_imports_merged_and_exports_the_same_graph() {
    let memory = Memory::ephemeral().unwrap();
    let report = memory
        .import_jsonl(REFERENCE.as_bytes(), &ImportOptions::new())
        .unwrap();
    assert_eq!(report.format, "memory-jsonl");
    assert_eq!((report.lines, report.records), (8, 8));
    let stats = memory.stats().unwrap();
    assert_eq!(
        (stats.entities, stats.relations, stats.observations),
        (3, 2, 2)
    );

    let exported = export(&memory, JsonlFormat::MemoryJsonl);
    let lines: Vec<serde_json::Value> = exported
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            serde_json::json!({"type":"entity","name":"Acme Corp","entityType":"organization",
                "observations":["Founded in 1999","Based in Springfield"]}),
            serde_json::json!({"type":"entity","name":"Widget Inc","entityType":"organization","observations":[]}),
            serde_json::json!({"type":"entity","name":"Zürich","entityType":"","observations":[]}),
            serde_json::json!({"type":"relation","from":"Acme Corp","to":"Widget Inc","relationType":"acquired"}),
            serde_json::json!({"type":"relation","from":"Widget Inc","to":"Zürich","relationType":"based in"}),
        ]
    );
    // Importing the export again changes nothing.
    let before = memory.stats().unwrap();
    memory
        .import_jsonl(exported.as_bytes(), &ImportOptions::new())
        .unwrap();
    let after = memory.stats().unwrap();
    assert_eq!(
        (after.entities, after.relations, after.observations),
        (before.entities, before.relations, before.observations)
    );
}

#[test]
fn a_bad_line_is_named_and_nothing_is_written() {
    let memory = Memory::ephemeral().unwrap();
    for (bad, line) in [
        ("{\"type\":\"entity\",\"name\":\"A\"", 2), // malformed JSON
        (
            "{\"type\":\"entity\",\"name\":\"\",\"entityType\":\"x\",\"observations\":[]}",
            2,
        ), // empty name
        ("{\"type\":\"planet\",\"name\":\"Mars\"}", 2), // unknown type
        ("{\"type\":\"relation\",\"from\":\"A\",\"to\":\"B\"}", 2), // missing field
    ] {
        let text = format!(
            "{{\"type\":\"entity\",\"name\":\"Fine\",\"entityType\":\"\",\"observations\":[]}}\n{bad}\n"
        );
        let err = memory
            .import_jsonl(text.as_bytes(), &ImportOptions::new())
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidLine { line: l, .. } if l == line),
            "{bad}: {err}"
        );
        assert!(err.is_invalid_input());
    }
    let mut invalid_utf8 = b"{\"type\":\"entity\",\"name\":\"".to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(b"\",\"entityType\":\"\",\"observations\":[]}\n");
    let err = memory
        .import_jsonl(invalid_utf8.as_slice(), &ImportOptions::new())
        .unwrap_err();
    assert!(err.to_string().contains("UTF-8"), "{err}");
    assert_eq!(
        memory.stats().unwrap().entities,
        0,
        "nothing of any import written"
    );
}

#[test]
fn skip_invalid_counts_and_reports() {
    let memory = Memory::ephemeral().unwrap();
    let text = "{\"type\":\"entity\",\"name\":\"A\",\"entityType\":\"\",\"observations\":[]}\nnot json\n\n{\"type\":\"relation\",\"from\":\"A\",\"to\":\"B\",\"relationType\":\"r\"}\n";
    let report = memory
        .import_jsonl(
            text.as_bytes(),
            &ImportOptions::new()
                .format(JsonlFormat::MemoryJsonl)
                .skip_invalid(true),
        )
        .unwrap();
    assert_eq!((report.records, report.skipped), (2, 1));
    assert_eq!(report.skipped_lines[0].0, 2);
    assert_eq!(memory.stats().unwrap().relations, 1);
}

#[test]
fn knowledge_graph_shapes_serialize_like_the_reference() {
    let e = KgEntity {
        name: "A".into(),
        entity_type: "t".into(),
        observations: vec![],
    };
    let r = KgRelation {
        from: "A".into(),
        to: "B".into(),
        relation_type: "r".into(),
    };
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        serde_json::json!({"name":"A","entityType":"t","observations":[]})
    );
    assert_eq!(
        serde_json::to_value(&r).unwrap(),
        serde_json::json!({"from":"A","to":"B","relationType":"r"})
    );
}

#[test]
fn memory_jsonl_imported_twice_changes_nothing_and_a_grown_file_adds_only_its_new_lines() {
    let memory = Memory::ephemeral().unwrap();
    let options = ImportOptions::new().episode(Episode::new("cairn-import").source("memory.jsonl"));
    let first = memory.import_jsonl(REFERENCE.as_bytes(), &options).unwrap();
    assert!(!first.replayed);
    let episode = first.episode.expect("recorded under an episode");
    let info = memory.get_episode(episode).unwrap().unwrap();
    assert_eq!(info.agent.as_deref(), Some("cairn-import"));
    assert_eq!(info.source.as_deref(), Some("memory.jsonl"));
    assert!(info.idempotency_key.unwrap().starts_with("import:sha256:"));
    let acme = memory.resolve("Acme Corp").unwrap().unwrap();
    let mentions = || memory.outgoing(acme).unwrap()[0].mentions;
    assert_eq!(
        mentions(),
        1,
        "two spellings of one relation in a snapshot are one fact"
    );
    let (stats, lines) = (memory.stats().unwrap(), export(&memory, JsonlFormat::Cairn));

    // The same content again (with Windows line ends): nothing at all is written.
    let again = memory
        .import_jsonl(REFERENCE.replace('\n', "\r\n").as_bytes(), &options)
        .unwrap();
    assert!(again.replayed);
    assert_eq!((again.episode, again.records), (Some(episode), 0));
    assert_eq!(memory.stats().unwrap(), stats);
    assert_eq!(body(&export(&memory, JsonlFormat::Cairn)), body(&lines));

    // A grown file: a new episode, and only the new lines change anything.
    let grown = format!(
        "{REFERENCE}{}\n",
        r#"{"type":"relation","from":"Ann","to":"ACME corp","relationType":"works at"}"#
    );
    let third = memory.import_jsonl(grown.as_bytes(), &options).unwrap();
    assert!(!third.replayed);
    assert_ne!(third.episode, Some(episode));
    let after = memory.stats().unwrap();
    assert_eq!(
        (
            after.entities,
            after.relations,
            after.observations,
            after.episodes
        ),
        (
            stats.entities + 1,
            stats.relations + 1,
            stats.observations,
            stats.episodes + 1
        )
    );
    assert_eq!(mentions(), 1, "old lines assert nothing again");
    let written = memory
        .history(&cairn::HistoryQuery::new().agent("cairn-import"))
        .unwrap();
    let by_third: Vec<_> = written
        .iter()
        .filter(|e| e.change.episode == third.episode)
        .map(|e| e.change.op)
        .collect();
    assert_eq!(
        by_third,
        [
            cairn::ChangeOp::RelationCreated,
            cairn::ChangeOp::EntityCreated
        ],
        "Ann and her relation, newest first"
    );
}
