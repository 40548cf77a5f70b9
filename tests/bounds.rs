//! Every search is bounded: out-of-range arguments get a typed error naming the field,
//! and the largest accepted ones still answer.

use cairn::{Memory, SearchOptions};

fn memory() -> Memory {
    let memory = Memory::ephemeral().unwrap();
    for (s, p, o) in [
        ("Ann", "knows", "Bob"),
        ("Bob", "knows", "Cid"),
        ("Cid", "works at", "Acme"),
        ("Acme", "acquired", "Widget"),
        ("Widget", "based in", "Springfield"),
    ] {
        memory.add_triple((s, p, o)).unwrap();
    }
    memory.sync().unwrap();
    memory
}

fn refused(memory: &Memory, query: &str, options: SearchOptions, field: &str) {
    let err = memory.search(query, &options).unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
    assert!(err.to_string().contains(field), "{err} should name {field}");
}

#[test]
fn out_of_range_arguments_are_refused_by_name() {
    let memory = memory();
    refused(
        &memory,
        "Ann",
        SearchOptions::new().limit(1_000_000_000_000),
        "limit",
    );
    refused(
        &memory,
        "Ann",
        SearchOptions::new().limit(usize::MAX),
        "limit",
    );
    refused(
        &memory,
        "Ann",
        SearchOptions::new().depth(u32::MAX),
        "depth",
    );
    refused(
        &memory,
        "Ann",
        SearchOptions::new().fan_out(usize::MAX),
        "fan_out",
    );
    refused(
        &memory,
        "Ann",
        SearchOptions::new().decay(f32::NAN),
        "decay",
    );
    refused(
        &memory,
        "Ann",
        SearchOptions::new().graph_weight(-1.0),
        "graph_weight",
    );
    let megabyte = "acme ".repeat(200_000);
    refused(&memory, &megabyte, SearchOptions::new(), "query");
    // Context goes through the same checks.
    let err = memory
        .context("Ann", &SearchOptions::new().limit(usize::MAX), 100)
        .unwrap_err();
    assert!(err.is_invalid_input(), "{err}");
}

#[test]
fn the_largest_accepted_arguments_answer() {
    let memory = memory();
    let widest = SearchOptions::new()
        .limit(SearchOptions::MAX_LIMIT)
        .depth(SearchOptions::MAX_DEPTH)
        .fan_out(SearchOptions::MAX_FAN_OUT);
    let hits = memory.search("Ann", &widest).unwrap();
    // The whole graph is within reach: every relation comes back.
    let relations = hits
        .iter()
        .filter(|h| matches!(h.target, cairn::Target::Relation(_)))
        .count();
    assert_eq!(relations, 5, "{hits:?}");
    let longest = "acme ".repeat(SearchOptions::MAX_QUERY_BYTES / 5);
    assert!(longest.len() <= SearchOptions::MAX_QUERY_BYTES);
    let hits = memory.search(&longest, &SearchOptions::new()).unwrap();
    assert!(hits.iter().any(|h| h.text == "Acme"), "{hits:?}");
}
