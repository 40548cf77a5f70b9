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

#[test]
fn a_cairn_row_without_columns_or_with_a_text_key_names_its_line() {
    // Found by the property tests below: both were SQLite errors, not the line's.
    let header = export(&Memory::ephemeral().unwrap(), JsonlFormat::Cairn);
    let header = header.lines().next().unwrap();
    for row in [r#"{"type":"episode"}"#, r#"{"type":"episode","id":"x"}"#] {
        let memory = Memory::ephemeral().unwrap();
        let err = memory
            .import_jsonl(
                format!("{header}\n{row}\n").as_bytes(),
                &ImportOptions::new(),
            )
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidLine { line: 2, .. }),
            "{row}: {err:?}"
        );
        assert_eq!(memory.stats().unwrap(), cairn::Stats::default());
    }
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

/// Random input never panics an import: it succeeds, or fails with a typed error and
/// writes nothing (the counts and the change log are as before).
mod properties {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::json;

    /// Modest: each case is an import (and the cairn-format cases a new memory).
    const CASES: u32 = 64;

    fn runner() -> TestRunner {
        TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            ..Config::default()
        })
    }

    /// Names a writer may send: plain ones, blank ones, control characters, long ones.
    fn names() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-zA-Z][a-zA-Z ]{0,12}",
            2 => any::<String>(),
            1 => prop::sample::select(vec!["", " ", "\u{0}", "\u{202e}x", "\t\n", "ＡＣＭＥ"])
                .prop_map(String::from),
            1 => "[a-z]{1000,1100}",
        ]
    }

    /// A JSON value of any shape (small).
    fn json_values() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            names().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// One line of a memory.jsonl: valid records with random names, records of the
    /// wrong shape, random JSON, random text, random bytes.
    fn reference_lines() -> impl Strategy<Value = Vec<u8>> {
        let entity = (names(), names(), prop::collection::vec(names(), 0..3)).prop_map(
            |(name, kind, observations)| {
                json!({"type": "entity", "name": name, "entityType": kind,
                       "observations": observations})
                .to_string()
            },
        );
        let relation = (names(), names(), names()).prop_map(|(from, to, kind)| {
            json!({"type": "relation", "from": from, "to": to, "relationType": kind}).to_string()
        });
        let shaped = (
            prop::sample::select(vec!["entity", "relation", "planet"]),
            json_values(),
        )
            .prop_map(|(kind, value)| {
                let mut line = json!({"type": kind});
                if let serde_json::Value::Object(fields) = value {
                    line.as_object_mut().unwrap().extend(fields);
                }
                line.to_string()
            });
        prop_oneof![
            4 => entity.prop_map(String::into_bytes),
            3 => relation.prop_map(String::into_bytes),
            2 => shaped.prop_map(String::into_bytes),
            1 => json_values().prop_map(|v| v.to_string().into_bytes()),
            1 => any::<String>().prop_map(String::into_bytes),
            1 => prop::collection::vec(any::<u8>(), 0..64),
        ]
    }

    fn file(lines: Vec<Vec<u8>>) -> Vec<u8> {
        lines.join(&b'\n')
    }

    /// Imports `input`; on an error, checks it is typed and nothing was written.
    fn import_checked(
        memory: &Memory,
        input: &[u8],
        options: &ImportOptions,
    ) -> Result<(), TestCaseError> {
        let before = (memory.stats().unwrap(), memory.last_seq().unwrap());
        match memory.import_jsonl(input, options) {
            Ok(report) => prop_assert!(report.records + report.skipped <= report.lines),
            Err(e) => {
                prop_assert!(
                    e.is_invalid_input() || matches!(e, Error::NewerSchema { .. }),
                    "untyped error: {e:?}"
                );
                let after = (memory.stats().unwrap(), memory.last_seq().unwrap());
                prop_assert_eq!(after, before, "an import that failed wrote: {}", e);
            }
        }
        Ok(())
    }

    #[test]
    fn memory_jsonl_import_of_anything_is_typed_and_atomic() {
        // One memory for every case: imports merge, so it grows as valid files arrive.
        let memory = Memory::ephemeral().unwrap();
        memory
            .add_triple(("Acme Corp", "acquired", "Widget Inc"))
            .unwrap();
        let strategy = (
            prop::collection::vec(reference_lines(), 0..12),
            any::<bool>(),
        );
        runner()
            .run(&strategy, |(lines, skip)| {
                let options = ImportOptions::new()
                    .format(JsonlFormat::MemoryJsonl)
                    .skip_invalid(skip);
                import_checked(&memory, &file(lines), &options)
            })
            .unwrap();
    }

    /// A cairn export of a memory grown from random names, then some of its lines
    /// replaced by random ones (or none: then it must import whole), into an empty
    /// memory. Opening a memory is the cost here (about 150 ms in a debug build), so one
    /// source grows over the cases, and a target is reused while a failed import leaves
    /// it empty.
    #[test]
    fn cairn_import_of_anything_is_typed_and_atomic() {
        let strategy = (
            prop::collection::vec((names(), names(), names()), 1..4),
            prop::collection::vec((any::<prop::sample::Index>(), reference_lines()), 0..3),
            any::<bool>(),
        );
        let source = Memory::ephemeral().unwrap();
        let target = std::cell::RefCell::new(Memory::ephemeral().unwrap());
        let mut runner = TestRunner::new(Config {
            cases: CASES / 2,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy, |(triples, damage, skip)| {
                for (s, p, o) in &triples {
                    // Names the memory refuses are refused here too: not this test's point.
                    let _ = source.add_triple((s.as_str(), p.as_str(), o.as_str()));
                }
                let export = export(&source, JsonlFormat::Cairn);
                let mut lines: Vec<Vec<u8>> =
                    export.lines().map(|l| l.as_bytes().to_vec()).collect();
                let damaged = !damage.is_empty();
                for (at, line) in damage {
                    let i = at.index(lines.len());
                    lines[i] = line;
                }
                let options = ImportOptions::new().skip_invalid(skip);
                let mut target = target.borrow_mut();
                if damaged {
                    import_checked(&target, &file(lines), &options)?;
                } else {
                    target
                        .import_jsonl(file(lines).as_slice(), &options)
                        .unwrap();
                    prop_assert_eq!(target.stats().unwrap(), source.stats().unwrap());
                }
                if target.stats().unwrap() != cairn::Stats::default() {
                    *target = Memory::ephemeral().unwrap();
                }
                Ok(())
            })
            .unwrap();
    }

    /// Random lines after a valid cairn header, into an empty memory.
    #[test]
    fn cairn_lines_of_any_shape_are_typed_and_atomic() {
        let header = export(&Memory::ephemeral().unwrap(), JsonlFormat::Cairn)
            .lines()
            .next()
            .unwrap()
            .to_owned();
        let target = Memory::ephemeral().unwrap();
        let row = (
            prop::sample::select(vec![
                "episode",
                "document",
                "chunk",
                "entity",
                "alias",
                "relation",
                "observation",
                "change",
                "nope",
            ]),
            json_values(),
        )
            .prop_map(|(kind, value)| {
                let mut line = json!({"type": kind});
                if let serde_json::Value::Object(fields) = value {
                    line.as_object_mut().unwrap().extend(fields);
                }
                line.to_string().into_bytes()
            });
        let lines = prop_oneof![3 => row, 1 => reference_lines()];
        let strategy = (prop::collection::vec(lines, 0..8), any::<bool>());
        runner()
            .run(&strategy, |(lines, skip)| {
                let mut input = header.clone().into_bytes();
                input.push(b'\n');
                input.extend(file(lines));
                let options = ImportOptions::new()
                    .format(JsonlFormat::Cairn)
                    .skip_invalid(skip);
                import_checked(&target, &input, &options)
            })
            .unwrap();
    }
}
