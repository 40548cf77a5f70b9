//! The passage step of the graph channel: a question naming X finds the passage about the
//! Y that X's passage names, which shares no word with the question.

use cairn::{ChunkOptions, Document, HitKind, Memory, SearchOptions, Target};

fn chunk_texts(memory: &Memory, query: &str, options: &SearchOptions) -> Vec<String> {
    memory
        .search(query, options)
        .unwrap()
        .into_iter()
        .filter(|h| matches!(h.target, Target::Chunk(_)))
        .map(|h| h.text)
        .collect()
}

/// Paragraphs about named things; only the first one's words match the question.
fn encyclopedia(about: bool) -> Memory {
    let memory = Memory::ephemeral().unwrap();
    let paragraphs = [
        (
            "Arthur's Magazine",
            "Arthur's Magazine was an American literary periodical first published in Philadelphia. It was edited by Timothy Shay Arthur.",
        ),
        (
            "Timothy Shay Arthur",
            "Timothy Shay Arthur was a popular nineteenth-century author of temperance novels, born in Newburgh.",
        ),
        (
            "First for Women",
            "First for Women is a woman's magazine published by Bauer Media Group in the USA.",
        ),
        (
            "Bauer Media Group",
            "Bauer Media Group is a German multimedia company headquartered in Hamburg.",
        ),
        (
            "Newburgh",
            "Newburgh is a city on the Hudson River, sixty miles north of New York City.",
        ),
    ];
    for (title, _) in &paragraphs {
        memory.ensure_entity(title).unwrap();
    }
    for (title, text) in &paragraphs {
        let mut doc = Document::new(format!("{title}\n{text}"))
            .chunking(ChunkOptions::new().max_chars(4_000).overlap_chars(0));
        if about {
            doc = doc.about(*title);
        }
        memory.add_document(&doc).unwrap();
    }
    // Unrelated filler, so the match is not simply everything.
    for i in 0..30 {
        memory
            .add_document(&Document::new(format!(
                "Report {i}\nQuarterly figures of branch {i} were filed on time."
            )))
            .unwrap();
    }
    memory.sync().unwrap();
    memory
}

#[test]
fn a_question_naming_x_finds_the_passage_about_the_y_it_names() {
    // The Bauer Media Group paragraph shares no word with the question: only the link
    // from the First for Women paragraph, which names it, can bring it back.
    let question = "Which city is home to the publisher of First for Women?";
    let chunks = SearchOptions::new().kinds(&[HitKind::Chunk]).limit(3);
    for about in [true, false] {
        let memory = encyclopedia(about);
        let with_graph = chunk_texts(&memory, question, &chunks);
        assert!(
            with_graph[0].starts_with("First for Women"),
            "about {about}: {with_graph:?}"
        );
        assert!(
            with_graph
                .iter()
                .any(|t| t.starts_with("Bauer Media Group")),
            "about {about}: the bridge passage is reached: {with_graph:?}"
        );
        let without = chunk_texts(&memory, question, &chunks.clone().depth(0));
        assert!(
            !without.iter().any(|t| t.starts_with("Bauer Media Group")),
            "about {about}: without the graph step BM25 cannot reach it: {without:?}"
        );
    }
}

#[test]
fn the_passage_about_a_named_entity_is_reached_from_the_entity() {
    let memory = encyclopedia(true);
    // Nothing in the Newburgh paragraph says "author"; the question names the author, the
    // author's passage names Newburgh, and Newburgh's own document is about it.
    let question =
        "Which river flows through the birthplace of the temperance novelist Timothy Shay Arthur?";
    let options = SearchOptions::new().kinds(&[HitKind::Chunk]).limit(3);
    let hits = chunk_texts(&memory, question, &options);
    assert!(hits[0].starts_with("Timothy Shay Arthur"), "{hits:?}");
    assert!(hits.iter().any(|t| t.starts_with("Newburgh")), "{hits:?}");
}

#[test]
fn hubs_do_not_spread_passages() {
    // "Acme" is named in 40 mails: reaching it from one mail must not pull in the other 39.
    let memory = Memory::ephemeral().unwrap();
    memory.ensure_entity("Acme").unwrap();
    for i in 0..40 {
        memory
            .add_document(&Document::new(format!(
                "Mail {i}: Acme invoice number {i} is due."
            )))
            .unwrap();
    }
    memory
        .add_document(&Document::new("Mail about the zeppelin order from Acme."))
        .unwrap();
    memory.sync().unwrap();
    let hits = memory
        .search(
            "zeppelin",
            &SearchOptions::new().kinds(&[HitKind::Chunk]).limit(10),
        )
        .unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
}

#[test]
fn a_document_about_an_entity_creates_it_and_survives_a_merge() {
    let memory = Memory::ephemeral().unwrap();
    let (doc, _) = memory
        .add_document(&Document::new("Widget Inc makes sprockets.").about("Widget Incorporated"))
        .unwrap();
    let widget = memory.resolve("Widget Incorporated").unwrap().unwrap();
    let short = memory.ensure_entity("Widget").unwrap();
    memory.merge(short, widget).unwrap();
    memory.sync().unwrap();
    let _ = doc;
    // Found from the surviving entity's name through the document it is about.
    let hits = memory
        .search(
            "Widget",
            &SearchOptions::new().kinds(&[HitKind::Chunk]).limit(5),
        )
        .unwrap();
    assert!(
        hits.iter().any(|h| h.text.contains("sprockets")),
        "{hits:?}"
    );
    // A bad name is refused and nothing is written.
    let before = memory.stats().unwrap();
    let err = memory
        .add_document(&Document::new("text").about("   "))
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert_eq!(memory.stats().unwrap(), before);
}

#[test]
fn the_chunk_of_a_hubs_fact_is_found_past_its_first_hundreds_of_facts() {
    // The passage step reads the chunks an entity's facts came from through an index of
    // the facts that have one (schema 7), not through a window of the entity's first
    // 256 facts: the one observation with a chunk, the last of 301 in the entity's
    // index order, still leads to its passage.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let memory = Memory::open(&path).unwrap();
    let (_, chunks) = memory
        .add_document(&Document::new("Zeppelin manifest: the cargo list."))
        .unwrap();
    for i in 0..300 {
        memory.observe("Acme", &format!("note {i:03}")).unwrap();
    }
    let last = memory.observe("Acme", "zz shipped the order").unwrap();
    // No API records a fact's chunk yet (an import does): set it as one would.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute(
            "UPDATE observation SET chunk_id = ?1 WHERE id = ?2",
            (chunks[0].get(), last.get()),
        )
        .unwrap();
    memory.sync().unwrap();
    let options = SearchOptions::new().kinds(&[HitKind::Chunk]).limit(5);
    let hits = chunk_texts(&memory, "acme", &options);
    assert_eq!(hits, ["Zeppelin manifest: the cargo list."]);
}
