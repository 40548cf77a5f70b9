//! The library's tracing events: a write, an index batch and a search each report where
//! their time went to an installed subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};

use cairn::{Memory, SearchOptions};

/// Everything the subscriber formatted, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lines_with<'a>(log: &'a str, message: &str) -> Vec<&'a str> {
    log.lines().filter(|l| l.contains(message)).collect()
}

#[test]
fn writes_index_batches_and_searches_report_their_timings() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // Global: the index batch is committed on the memory's own thread.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let memory = Memory::ephemeral().unwrap();
    memory
        .add_triple(("Acme Corp", "acquired", "Widget Inc"))
        .unwrap();
    memory.sync().unwrap();
    let hits = memory
        .search("widget", &SearchOptions::new().read_your_writes(true))
        .unwrap();
    assert!(!hits.is_empty());
    drop(memory);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let transactions = lines_with(&log, "transaction");
    assert!(
        transactions.iter().any(|l| l.contains("begin_wait_us=")
            && l.contains("commit_us=")
            && l.contains("committed=true")),
        "{log}"
    );
    assert!(!lines_with(&log, "process write lock").is_empty(), "{log}");
    let batches = lines_with(&log, "index batch committed");
    assert!(
        batches.iter().any(|l| l.contains("cairn::index")
            && l.contains("lag_ms=")
            && !l.contains("changes=0")),
        "{log}"
    );
    let searches = lines_with(&log, "cairn::search");
    assert!(
        searches
            .iter()
            .any(|l| l.contains("lexical_us=") && l.contains("graph_us=") && l.contains("hits=")),
        "{log}"
    );
}
