//! The graph API end to end: entities, aliases, relations, observations, merges,
//! deletes, batches, provenance and the change log.

mod common;

use cairn::{Batch, ChangeOp, Direction, Episode, Error, Memory, Seq, Timestamp, Triple};

fn memory() -> Memory {
    Memory::ephemeral_with(common::options()).unwrap()
}

fn ops_since(memory: &Memory, after: Seq) -> Vec<ChangeOp> {
    memory
        .changes_since(after, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|c| c.op)
        .collect()
}

#[test]
fn variant_names_reach_one_entity_and_keep_the_first_spelling() {
    let m = memory();
    let id = m.ensure_entity("Acme Corp").unwrap();
    for form in [
        "acme corp",
        "ＡＣＭＥ Corp",
        "Acme  Corp",
        " Acme Corp ",
        "Acme\u{a0}Corp",
    ] {
        assert_eq!(m.ensure_entity(form).unwrap(), id, "{form:?}");
    }
    assert_eq!(
        m.ensure_entity("Café").unwrap(),
        m.ensure_entity("Cafe\u{301}").unwrap()
    );
    assert_eq!(
        m.ensure_entity("STRASSE").unwrap(),
        m.ensure_entity("Straße").unwrap()
    );
    assert_eq!(m.entity(id).unwrap().unwrap().name, "Acme Corp");
    assert_eq!(m.stats().unwrap().entities, 3);
}

#[test]
fn bad_names_are_refused_and_write_nothing() {
    let m = memory();
    for bad in ["", "   ", "\u{3000}\u{a0}", "\u{0}\u{1}"] {
        let err = m.add_triple((bad, "knows", "Bob")).unwrap_err();
        assert!(err.is_invalid_input(), "{bad:?}: {err}");
    }
    let long = "n".repeat(cairn::MAX_NAME_BYTES + 1);
    assert!(matches!(
        m.ensure_entity(&long),
        Err(Error::InvalidName { .. })
    ));
    assert!(m.observe("Bob", "  ").unwrap_err().is_invalid_input());
    assert_eq!(
        m.stats().unwrap(),
        cairn::Stats::default(),
        "nothing was written"
    );
}

#[test]
fn repeated_triples_count_mentions_and_predicates_normalize() {
    let m = memory();
    let first = m.add_triple(("Ann", "works at", "Acme")).unwrap();
    let again = m.add_triple(("ANN", "WORKS-AT", "acme")).unwrap();
    let third = m.add_triple(("ann", "works_at", "ＡＣＭＥ")).unwrap();
    assert_eq!((first, first), (again, third));
    let rel = m.relation(first).unwrap().unwrap();
    assert_eq!(rel.mentions, 3);
    assert_eq!(rel.predicate, "works at");
    assert!(rel.last_seen >= rel.first_seen);
    assert_eq!(
        ops_since(&m, Seq::from_raw(0)),
        [
            ChangeOp::EntityCreated,
            ChangeOp::EntityCreated,
            ChangeOp::RelationCreated,
            ChangeOp::RelationMentioned,
            ChangeOp::RelationMentioned
        ]
    );
}

#[test]
fn relations_list_by_direction_and_neighbours() {
    let m = memory();
    m.add_triple(("Ann", "works at", "Acme")).unwrap();
    m.add_triple(("Bob", "works at", "Acme")).unwrap();
    m.add_triple(("Acme", "acquired", "Widget")).unwrap();
    let acme = m.resolve("acme").unwrap().unwrap();
    assert_eq!(m.incoming(acme).unwrap().len(), 2);
    assert_eq!(m.outgoing(acme).unwrap().len(), 1);
    assert_eq!(m.relations(acme, Direction::Both).unwrap().len(), 3);
    let names: Vec<String> = m
        .neighbours(acme)
        .unwrap()
        .into_iter()
        .map(|id| m.entity(id).unwrap().unwrap().name)
        .collect();
    assert_eq!(names, ["Ann", "Bob", "Widget"]);
}

#[test]
fn validity_and_invalidation() {
    let m = memory();
    let t0 = Timestamp::from_millis(1_000);
    let id = m
        .add_triple(Triple::new("Ann", "lives in", "Paris").valid_from(t0))
        .unwrap();
    let rel = m.relation(id).unwrap().unwrap();
    assert!(rel.is_valid_at(Timestamp::from_millis(2_000)));
    assert!(!rel.is_valid_at(Timestamp::from_millis(500)));
    m.invalidate(id, Timestamp::from_millis(3_000)).unwrap();
    let rel = m.relation(id).unwrap().unwrap();
    assert_eq!(rel.valid_to, Some(Timestamp::from_millis(3_000)));
    assert!(!rel.is_valid_at(Timestamp::from_millis(3_000)));
    assert!(
        m.invalidate(cairn::RelationId::from_raw(999), t0)
            .unwrap_err()
            .is_not_found()
    );
}

#[test]
fn observations_are_not_stored_twice() {
    let m = memory();
    let a = m.observe("Ann", "likes green tea").unwrap();
    let b = m.observe("ANN", "  likes green tea\n").unwrap();
    assert_eq!(a, b);
    m.observe("Ann", "likes black tea").unwrap();
    let ann = m.resolve("ann").unwrap().unwrap();
    assert_eq!(m.observations(ann).unwrap().len(), 2);
    assert!(m.remove_observation(a).unwrap());
    assert!(!m.remove_observation(a).unwrap());
    assert_eq!(m.observations(ann).unwrap().len(), 1);
}

#[test]
fn aliases_and_rename() {
    let m = memory();
    let ibm = m.ensure_entity("International Business Machines").unwrap();
    assert!(m.add_alias(ibm, "IBM").unwrap());
    assert!(!m.add_alias(ibm, "ibm").unwrap(), "same key: no-op");
    assert_eq!(m.resolve("I.B.M.").unwrap(), None);
    assert_eq!(m.resolve("ibm").unwrap(), Some(ibm));
    let apple = m.ensure_entity("Apple").unwrap();
    assert!(matches!(
        m.add_alias(apple, "IBM"),
        Err(Error::AliasTaken { .. })
    ));
    m.rename(ibm, "IBM Corp").unwrap();
    assert_eq!(m.entity(ibm).unwrap().unwrap().name, "IBM Corp");
    assert_eq!(
        m.resolve("international business machines").unwrap(),
        Some(ibm)
    );
    assert_eq!(m.aliases(ibm).unwrap().len(), 3);
    m.set_kind(ibm, "organization").unwrap();
    m.set_summary(ibm, "A computer company.").unwrap();
    let e = m.entity(ibm).unwrap().unwrap();
    assert_eq!(
        (e.kind.as_deref(), e.summary.as_deref()),
        (Some("organization"), Some("A computer company."))
    );
}

#[test]
fn merge_moves_everything_and_deduplicates() {
    let m = memory();
    m.add_triple(("Acme Corp", "based in", "Springfield"))
        .unwrap();
    m.add_triple(("Acme Corp", "acquired", "Widget")).unwrap();
    m.observe("Acme Corp", "founded 1999").unwrap();
    // The same company under another name, with one overlapping fact and one new one.
    m.add_triple(("ACME Inc.", "based in", "Springfield"))
        .unwrap();
    m.add_triple(("ACME Inc.", "based in", "Springfield"))
        .unwrap();
    m.add_triple(("Bob", "works at", "ACME Inc.")).unwrap();
    m.observe("ACME Inc.", "founded 1999").unwrap();
    m.observe("ACME Inc.", "listed on NASDAQ").unwrap();
    let keep = m.resolve("acme corp").unwrap().unwrap();
    let absorb = m.resolve("acme inc.").unwrap().unwrap();
    m.merge(keep, absorb).unwrap();

    assert_eq!(m.entity(absorb).unwrap(), None);
    assert_eq!(m.resolve("ACME Inc.").unwrap(), Some(keep), "aliases moved");
    let based: Vec<_> = m
        .outgoing(keep)
        .unwrap()
        .into_iter()
        .filter(|r| r.predicate == "based in")
        .collect();
    assert_eq!(based.len(), 1, "collision folded into one relation");
    assert_eq!(based[0].mentions, 3, "mention counts added");
    assert_eq!(m.incoming(keep).unwrap()[0].subject_name, "Bob");
    let texts: Vec<String> = m
        .observations(keep)
        .unwrap()
        .into_iter()
        .map(|o| o.text)
        .collect();
    assert_eq!(texts, ["founded 1999", "listed on NASDAQ"]);
    let stats = m.stats().unwrap();
    assert_eq!(
        (stats.entities, stats.relations, stats.observations),
        (4, 3, 2)
    );
    assert!(matches!(
        m.merge(keep, keep),
        Err(Error::InvalidInput { .. })
    ));
    assert!(m.merge(keep, absorb).unwrap_err().is_not_found());
}

#[test]
fn delete_cascades_and_logs_every_removal() {
    let m = memory();
    m.add_triple(("Ann", "knows", "Bob")).unwrap();
    m.add_triple(("Bob", "knows", "Cid")).unwrap();
    m.observe("Bob", "tall").unwrap();
    let before = m.last_seq().unwrap();
    let bob = m.resolve("bob").unwrap().unwrap();
    assert!(m.delete_entity(bob).unwrap());
    assert!(!m.delete_entity(bob).unwrap());
    assert_eq!(m.resolve("Bob").unwrap(), None);
    let stats = m.stats().unwrap();
    assert_eq!(
        (
            stats.entities,
            stats.aliases,
            stats.relations,
            stats.observations
        ),
        (2, 2, 0, 0)
    );
    assert_eq!(
        ops_since(&m, before),
        [
            ChangeOp::RelationRemoved,
            ChangeOp::RelationRemoved,
            ChangeOp::ObservationRemoved,
            ChangeOp::EntityDeleted
        ]
    );
}

#[test]
fn a_batch_with_one_invalid_item_writes_nothing() {
    let m = memory();
    m.add_triple(("Existing", "is", "here")).unwrap();
    let before = m.stats().unwrap();
    let mut batch = Batch::new();
    for i in 0..100 {
        batch.triple(Triple::new(
            format!("Person {i}"),
            "knows",
            format!("Person {}", i + 1),
        ));
    }
    batch.observe("Person 1", "valid");
    batch.triple(("Person 7", "\u{0}", "Person 8"));
    batch.observe("Person 2", "also valid");
    match m.apply(&batch) {
        Err(Error::InvalidBatchItem { index: 101, source }) => {
            assert!(matches!(*source, Error::InvalidName { .. }), "{source}");
        }
        other => panic!("expected InvalidBatchItem at 101, got {other:?}"),
    }
    assert_eq!(m.stats().unwrap(), before);
}

#[test]
fn a_batch_failing_midway_rolls_back() {
    let m = memory();
    let mut batch = Batch::new();
    batch.triple(("A", "r", "B"));
    // Valid input that fails only inside the transaction: an id that does not exist.
    batch.observe(cairn::EntityId::from_raw(12345), "orphan");
    assert!(m.apply(&batch).unwrap_err().is_not_found());
    assert_eq!(m.stats().unwrap(), cairn::Stats::default());
}

#[test]
fn batch_results_follow_item_order() {
    let m = memory();
    let mut batch = Batch::new();
    batch
        .triple(("A", "r", "B"))
        .triple(("a", "R", "b"))
        .observe("A", "x")
        .observe("a", "x");
    let report = m.apply(&batch).unwrap();
    assert_eq!(report.relations[0], report.relations[1]);
    assert_eq!(report.observations[0], report.observations[1]);
    assert_eq!(
        m.relation(report.relations[0]).unwrap().unwrap().mentions,
        2
    );
}

#[test]
fn provenance_tells_who_wrote_what_and_when() {
    let m = memory();
    let at = Timestamp::from_millis(1_700_000_000_000);
    let mail = m
        .episode(
            &Episode::new("mail")
                .source("msg-1")
                .at(at)
                .metadata(serde_json::json!({"id": 1})),
        )
        .unwrap();
    let calendar = m.episode(&Episode::new("calendar")).unwrap();
    let rel = mail.add_triple(("Ann", "emailed", "Bob")).unwrap();
    calendar.add_triple(("Ann", "meets", "Bob")).unwrap();
    m.add_triple(("Ann", "knows", "Bob")).unwrap(); // no provenance

    let episodes = m.episodes_by_agent("mail").unwrap();
    assert_eq!(episodes.len(), 1);
    assert_eq!(episodes[0].source.as_deref(), Some("msg-1"));
    assert_eq!(episodes[0].at, at);
    assert_eq!(episodes[0].metadata.as_deref(), Some(r#"{"id":1}"#));
    assert_eq!(
        m.relation(rel).unwrap().unwrap().episode,
        mail.current_episode()
    );

    let by_mail = m.written_by("mail", 100).unwrap();
    let ops: Vec<ChangeOp> = by_mail.iter().map(|c| c.op).collect();
    assert_eq!(
        ops,
        [
            ChangeOp::EntityCreated,
            ChangeOp::EntityCreated,
            ChangeOp::RelationCreated
        ]
    );
    let by_calendar = m.written_by("calendar", 100).unwrap();
    assert_eq!(by_calendar.len(), 1, "only the relation was new");
    assert!(by_calendar[0].at >= by_mail[2].at);
    assert!(
        m.with_episode(cairn::EpisodeId::from_raw(404))
            .unwrap_err()
            .is_not_found()
    );
    assert!(m.episode(&Episode::new("")).unwrap_err().is_invalid_input());
}

#[test]
fn entities_page_by_id() {
    let m = memory();
    for i in 0..25 {
        m.ensure_entity(&format!("E{i}")).unwrap();
    }
    let first = m.entities(None, 10).unwrap();
    let second = m.entities(Some(first[9].id), 10).unwrap();
    let third = m.entities(Some(second[9].id), 10).unwrap();
    assert_eq!((first.len(), second.len(), third.len()), (10, 10, 5));
    assert!(first[9].id < second[0].id);
}

#[test]
fn idempotency_keys_are_scoped_by_agent_and_checked() {
    let memory = memory();
    let mut batch = Batch::new();
    batch.triple(("Ann", "knows", "Bob"));
    let mail = Episode::new("mail").idempotency_key("k1");
    let calendar = Episode::new("calendar").idempotency_key("k1");
    assert!(!memory.record(&mail, &batch).unwrap().replayed);
    assert!(memory.record(&mail, &batch).unwrap().replayed);
    // Another agent's key is another write: the triple is mentioned again.
    let other = memory.record(&calendar, &batch).unwrap();
    assert!(!other.replayed);
    let relation = memory.relation(other.report.relations[0]).unwrap().unwrap();
    assert_eq!(relation.mentions, 2);
    assert_eq!(memory.stats().unwrap().episodes, 2);

    // An episode recorded with a key first, then its batch: the batch is written once.
    let later = Episode::new("mail").idempotency_key("k2");
    let handle = memory.episode(&later).unwrap();
    let first = memory.record(&later, &batch).unwrap();
    assert!(!first.replayed);
    assert_eq!(Some(first.episode), handle.current_episode());
    assert!(memory.record(&later, &batch).unwrap().replayed);
    assert_eq!(memory.stats().unwrap().episodes, 3);

    let blank = Episode::new("mail").idempotency_key("  ");
    let err = memory.record(&blank, &batch).unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    let long = Episode::new("mail").idempotency_key("k".repeat(5000));
    assert!(memory.record(&long, &batch).unwrap_err().is_invalid_input());
    assert_eq!(
        memory.stats().unwrap().episodes,
        3,
        "refused keys wrote nothing"
    );
}

#[test]
fn a_keyed_batch_that_fails_leaves_no_key_behind() {
    let memory = memory();
    let keyed = Episode::new("mail").idempotency_key("k");
    let mut bad = Batch::new();
    bad.triple(("Ann", "knows", "Bob"));
    bad.observe("", "no name");
    assert!(memory.record(&keyed, &bad).is_err());
    assert_eq!(memory.stats().unwrap().episodes, 0);
    let mut good = Batch::new();
    good.triple(("Ann", "knows", "Bob"));
    assert!(
        !memory.record(&keyed, &good).unwrap().replayed,
        "the key is still free"
    );
}
