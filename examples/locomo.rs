//! LoCoMo evidence recall, as specified in `../shared/data/locomo/EVAL.md`: did the memory
//! hand back the dialogue turns that hold the answer? No LLM involved.
//!
//! ```sh
//! cargo run --release --example locomo                     # the table
//! cargo run --release --example locomo -- --json           # one JSON object
//! cargo run --release --example locomo -- path/to/locomo10.json
//! ```
//!
//! The dataset is licensed CC BY-NC 4.0 and is read from the shared data folder at run
//! time; it is never copied into this repository.
//!
//! Ingestion (per conversation, one fresh memory): every session is one document whose
//! units are its turns, text `"<speaker>: <text>"` plus `" [shares image: <caption>]"`,
//! with the turn's `dia_id` as unit metadata. Nothing else is stored yet: no
//! `observation` / `session_summary` fields, no extracted entities or relations.
//!
//! Channels reported: `bm25` = cairn's BM25 channel over chunks. The hybrid channel
//! (graph expansion, vectors, fusion) is not implemented yet, so no hybrid figure is
//! printed: this example reports only what it measured.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use cairn::{ChunkId, HitKind, Memory, SearchOptions, Target, Unit};
use serde_json::Value;

const KS: [usize; 3] = [5, 10, 20];

struct Turn {
    dia_id: String,
    text: String,
}

struct Question {
    text: String,
    gold: Vec<String>,
    category: u8,
}

struct Conversation {
    sessions: Vec<Vec<Turn>>,
    questions: Vec<Question>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/locomo/locomo10.json")
        });
    let conversations = load(&path)?;

    // recalls[category] -> per question [r@5, r@10, r@20]
    let mut recalls: BTreeMap<u8, Vec<[f64; 3]>> = BTreeMap::new();
    let mut latencies_ms: Vec<f64> = Vec::new();
    for conversation in &conversations {
        let memory = Memory::ephemeral()?;
        let mut dia_of: HashMap<ChunkId, String> = HashMap::new();
        for (n, session) in conversation.sessions.iter().enumerate() {
            let units: Vec<Unit> = session
                .iter()
                .map(|t| {
                    Unit::new(t.text.as_str()).metadata(serde_json::json!({ "dia_id": t.dia_id }))
                })
                .collect();
            let (_, chunks) = memory.add_units(&format!("session_{}", n + 1), &units)?;
            for (chunk, turn) in chunks.into_iter().zip(session) {
                dia_of.insert(chunk, turn.dia_id.clone());
            }
        }
        memory.sync()?;
        let options = SearchOptions::new()
            .kinds(&[HitKind::Chunk])
            .limit(KS[2])
            .depth(0);
        for q in &conversation.questions {
            let start = Instant::now();
            let hits = memory.search(&q.text, &options)?;
            latencies_ms.push(start.elapsed().as_secs_f64() * 1000.0);
            let ranked = ranked_dia_ids(&hits, &dia_of);
            recalls
                .entry(q.category)
                .or_default()
                .push(recall_at(&ranked, &q.gold));
        }
    }
    let table = summarize(&recalls);
    latencies_ms.sort_by(f64::total_cmp);
    let p50 = percentile(&latencies_ms, 0.50);
    let p99 = percentile(&latencies_ms, 0.99);
    if json {
        let out = serde_json::json!({ "bm25": table_json(&table), "latency_ms": { "p50": p50, "p99": p99 } });
        println!("{out}");
    } else {
        print_table("bm25 (cairn, chunks only)", &table);
        println!(
            "query latency: p50 {p50:.3} ms, p99 {p99:.3} ms over {} queries",
            latencies_ms.len()
        );
        println!("hybrid: not implemented yet (no figure)");
    }
    Ok(())
}

/// Distinct dia_ids in rank order.
fn ranked_dia_ids(hits: &[cairn::Hit], dia_of: &HashMap<ChunkId, String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for hit in hits {
        if let Target::Chunk(id) = hit.target
            && let Some(dia) = dia_of.get(&id)
            && seen.insert(dia.clone())
        {
            out.push(dia.clone());
        }
    }
    out
}

fn recall_at(ranked: &[String], gold: &[String]) -> [f64; 3] {
    KS.map(|k| {
        let top: HashSet<&String> = ranked.iter().take(k).collect();
        gold.iter().filter(|g| top.contains(g)).count() as f64 / gold.len() as f64
    })
}

/// Rows: "cat1".."cat5", "cat1_4", "cat1_5" → (questions, [r@5, r@10, r@20]).
fn summarize(recalls: &BTreeMap<u8, Vec<[f64; 3]>>) -> Vec<(String, usize, [f64; 3])> {
    let mean = |rows: Vec<&[f64; 3]>| -> (usize, [f64; 3]) {
        let n = rows.len();
        let mut sum = [0.0; 3];
        for r in &rows {
            for i in 0..3 {
                sum[i] += r[i];
            }
        }
        (n, sum.map(|s| if n == 0 { 0.0 } else { s / n as f64 }))
    };
    let mut out = Vec::new();
    for cat in 1..=5u8 {
        let (n, r) = mean(
            recalls
                .get(&cat)
                .map(|v| v.iter().collect())
                .unwrap_or_default(),
        );
        out.push((format!("cat{cat}"), n, r));
    }
    let upto = |max: u8| {
        recalls
            .iter()
            .filter(|(c, _)| **c <= max)
            .flat_map(|(_, v)| v.iter())
            .collect()
    };
    let (n, r) = mean(upto(4));
    out.push(("cat1_4".to_owned(), n, r));
    let (n, r) = mean(upto(5));
    out.push(("cat1_5".to_owned(), n, r));
    out
}

fn table_json(table: &[(String, usize, [f64; 3])]) -> Value {
    let mut map = serde_json::Map::new();
    for (name, _, r) in table {
        map.insert(
            name.clone(),
            serde_json::json!({ "r5": r[0], "r10": r[1], "r20": r[2] }),
        );
    }
    Value::Object(map)
}

fn print_table(title: &str, table: &[(String, usize, [f64; 3])]) {
    const NAMES: [&str; 5] = [
        "multi-hop",
        "temporal",
        "open-domain",
        "single-hop",
        "adversarial",
    ];
    println!("{title}");
    println!(
        "{:<24} {:>9} {:>6} {:>6} {:>6}",
        "category", "questions", "R@5", "R@10", "R@20"
    );
    for (i, (name, n, r)) in table.iter().enumerate() {
        let label = NAMES.get(i).map_or(name.clone(), |c| format!("{name} {c}"));
        println!(
            "{label:<24} {n:>9} {:>6.3} {:>6.3} {:>6.3}",
            r[0], r[1], r[2]
        );
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx]
}

fn load(path: &PathBuf) -> Result<Vec<Conversation>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data: Value = serde_json::from_str(&text)?;
    let records = data.as_array().ok_or("locomo10.json: expected an array")?;
    records.iter().map(conversation).collect()
}

fn conversation(record: &Value) -> Result<Conversation, Box<dyn std::error::Error>> {
    let conv = record["conversation"]
        .as_object()
        .ok_or("record without conversation")?;
    let mut numbered: Vec<(u32, &Vec<Value>)> = conv
        .iter()
        .filter_map(|(k, v)| {
            let n = k.strip_prefix("session_")?.parse().ok()?;
            Some((n, v.as_array()?))
        })
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    let mut sessions = Vec::new();
    let mut valid = HashSet::new();
    for (_, turns) in numbered {
        let mut session = Vec::new();
        for t in turns {
            let dia_id = t["dia_id"]
                .as_str()
                .ok_or("turn without dia_id")?
                .to_owned();
            let mut text = format!(
                "{}: {}",
                t["speaker"].as_str().unwrap_or(""),
                t["text"].as_str().unwrap_or("")
            );
            if let Some(caption) = t
                .get("blip_caption")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
            {
                text.push_str(&format!(" [shares image: {caption}]"));
            }
            valid.insert(dia_id.clone());
            session.push(Turn { dia_id, text });
        }
        sessions.push(session);
    }
    let mut questions = Vec::new();
    for qa in record["qa"].as_array().ok_or("record without qa")? {
        let gold = clean_evidence(qa.get("evidence"), &valid);
        if gold.is_empty() {
            continue;
        }
        let category = qa["category"].as_u64().ok_or("qa without category")? as u8;
        let text = qa["question"]
            .as_str()
            .ok_or("qa without question")?
            .to_owned();
        questions.push(Question {
            text,
            gold,
            category,
        });
    }
    Ok(Conversation {
        sessions,
        questions,
    })
}

/// EVAL.md's cleaning: split on `;`, `,` and white space; `D:11:26` → `D11:26`;
/// `D30:05` → `D30:5`; drop ids that name no turn; keep first occurrences.
fn clean_evidence(raw: Option<&Value>, valid: &HashSet<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let items = raw.and_then(Value::as_array).cloned().unwrap_or_default();
    for item in items {
        let item = match item {
            Value::String(s) => s,
            other => other.to_string(),
        };
        for piece in item.split(|c: char| c == ';' || c == ',' || c.is_whitespace()) {
            let Some(id) = normalize_dia_id(piece) else {
                continue;
            };
            if valid.contains(&id) && !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

fn normalize_dia_id(piece: &str) -> Option<String> {
    let rest = piece.strip_prefix('D')?;
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    let (session, turn) = rest.split_once(':')?;
    let session: u32 = session.parse().ok()?;
    let turn: u32 = turn.parse().ok()?;
    Some(format!("D{session}:{turn}"))
}
