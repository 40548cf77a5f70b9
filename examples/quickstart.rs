//! Several agent threads write overlapping knowledge into one memory file at once, each
//! spelling names its own way; then we print what the memory holds.
//!
//! ```sh
//! cargo run --example quickstart              # a fresh file in the temp directory
//! cargo run --example quickstart -- my.db     # or your own file (appends)
//! ```

use std::thread;

use cairn::{Batch, Direction, Episode, Memory};

/// An agent id, the source it reads, and the triples it extracts from it.
type Agent = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str, &'static str)],
);

fn main() -> cairn::Result<()> {
    let path = match std::env::args_os().nth(1) {
        Some(path) => path.into(),
        None => {
            let path = std::env::temp_dir().join("cairn-quickstart.db");
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            path
        }
    };
    let memory = Memory::open(&path)?;

    // Three agents, each extracting triples from its own source, at the same time.
    let agents: [Agent; 3] = [
        (
            "mail",
            "inbox/4711",
            &[
                ("Acme Corp", "acquired", "Widget Inc"),
                ("Ann Lee", "works at", "Acme Corp"),
                ("Widget Inc", "based in", "Zürich"),
            ],
        ),
        (
            "calendar",
            "cal/2026-11-23",
            &[
                ("ann lee", "meets", "Bob Stone"),
                ("BOB STONE", "works_at", "ACME CORP"),
                ("ａｎｎ　ｌｅｅ", "WORKS-AT", "acme  corp"),
            ],
        ),
        (
            "chat",
            "thread/42",
            &[
                ("ＡＣＭＥ Corp", "ACQUIRED", "widget inc"),
                ("Widget Inc", "based in", "ZÜRICH"),
                ("Bob Stone", "knows", "Ann\u{a0}Lee"),
            ],
        ),
    ];
    let handles: Vec<_> = agents
        .into_iter()
        .map(|(agent, source, triples)| {
            let memory = memory.clone();
            thread::spawn(move || -> cairn::Result<()> {
                let me = memory.episode(&Episode::new(agent).source(source))?;
                for &triple in triples {
                    me.add_triple(triple)?;
                }
                let mut batch = Batch::new();
                batch.observe("Acme Corp", format!("mentioned by the {agent} agent"));
                me.apply(&batch)?;
                Ok(())
            })
        })
        .collect();
    for handle in handles {
        handle.join().expect("agent thread panicked")?;
    }

    let stats = memory.stats()?;
    println!("memory file: {}", path.display());
    println!(
        "{} entities, {} relations, {} observations, {} episodes, {} changes\n",
        stats.entities, stats.relations, stats.observations, stats.episodes, stats.changes
    );
    for entity in memory.entities(None, 100)? {
        let aliases: Vec<String> = memory
            .aliases(entity.id)?
            .into_iter()
            .map(|a| a.name)
            .collect();
        println!(
            "{} (#{}, aliases: {})",
            entity.name,
            entity.id,
            aliases.join(" / ")
        );
        for rel in memory.relations(entity.id, Direction::Outgoing)? {
            println!(
                "    –{}→ {}   (asserted {}×)",
                rel.predicate, rel.object_name, rel.mentions
            );
        }
        for obs in memory.observations(entity.id)? {
            println!("    • {}", obs.text);
        }
    }
    println!();
    for agent in ["mail", "calendar", "chat"] {
        let changes = memory.written_by(agent, 1000)?;
        println!("{agent:>8} agent wrote {} changes", changes.len());
    }
    Ok(())
}
