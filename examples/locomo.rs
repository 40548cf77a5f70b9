//! LoCoMo evidence recall, as specified in `../shared/data/locomo/EVAL.md`: did the memory
//! hand back the dialogue turns that hold the answer? No LLM involved.
//!
//! ```sh
//! cargo run --release --example locomo                     # the table
//! cargo run --release --example locomo -- --json           # one JSON object
//! cargo run --release --example locomo -- path/to/locomo10.json
//! cargo run --release --example locomo -- --model DIR      # also the hybrid_model run
//! cargo run --release --example locomo -- --fusion-study [--model DIR]
//! ```
//!
//! The dataset is licensed CC BY-NC 4.0 and is read from the shared data folder at run
//! time; it is never copied into this repository.
//!
//! ```sh
//! cargo run --release --example locomo -- --with-observations  # also the run with facts
//! ```
//!
//! Ingestion (per conversation, one fresh memory, never looking at `qa`):
//! - the two speakers become entities, so every turn that names a speaker (its
//!   `"<speaker>: "` prefix included) is linked to that speaker by mention linking;
//! - every session is one document whose units are its turns, text `"<speaker>: <text>"`
//!   plus `" [shares image: <caption>]"`, with the turn's `dia_id` as unit metadata; the
//!   document keeps the turns' order, which gives each turn its context (its neighbours)
//!   and its session.
//! - with `--with-observations` only: a second memory per conversation also stores the
//!   dataset's `observation` facts as observations of their speaker; a hit on a fact
//!   counts for the turns the fact cites. `session_summary` and `event_summary` are not
//!   used.
//!
//! Runs reported: `bm25` = [`SearchOptions::bm25_only`] over chunks; `hybrid` = the
//! default search over chunks (BM25 with chunk context, document score and focus on the
//! speakers the question names; graph expansion and vectors have nothing to add to a
//! chunks-only answer here and are measured in `docs/retrieval.md`). Latency is the
//! hybrid run's.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Instant;

use std::sync::Arc;

use cairn::{
    ChunkId, Fusion, HashingEmbedder, HitKind, Memory, ObservationId, Options, SearchOptions,
    Target, Unit,
};
use serde_json::Value;

mod common;

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
    speakers: Vec<String>,
    sessions: Vec<Vec<Turn>>,
    /// (speaker, fact, the dia_ids it cites) from the `observation` field.
    facts: Vec<(String, String, Vec<String>)>,
    questions: Vec<Question>,
}

/// Per-category recall rows: category → per question [r@5, r@10, r@20].
type Recalls = BTreeMap<u8, Vec<[f64; 3]>>;

/// What a hit stands for in dia_ids: a turn's own, or the turns a fact cites.
#[derive(Default)]
struct Provenance {
    turns: HashMap<ChunkId, String>,
    facts: HashMap<ObservationId, Vec<String>>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let path = common::positional(&args)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data/locomo/locomo10.json")
        });
    let with_facts = args.iter().any(|a| a == "--with-observations");
    let conversations = load(&path)?;
    let model = common::model(&args)?;
    if args.iter().any(|a| a == "--fusion-study") {
        return fusion_study(&conversations, model);
    }

    let bm25 = SearchOptions::new()
        .bm25_only()
        .kinds(&[HitKind::Chunk])
        .limit(KS[2]);
    let hybrid = SearchOptions::new().kinds(&[HitKind::Chunk]).limit(KS[2]);
    let hybrid_facts = SearchOptions::new()
        .kinds(&[HitKind::Chunk, HitKind::Observation])
        .limit(KS[2]);
    let (mut r_bm25, mut r_hybrid, mut r_facts) = (Recalls::new(), Recalls::new(), Recalls::new());
    let (mut r_model, mut r_model_facts) = (Recalls::new(), Recalls::new());
    let mut latencies_ms: Vec<f64> = Vec::new();
    for conversation in &conversations {
        let (memory, provenance) = ingest(conversation, false)?;
        run(&memory, &provenance, conversation, &bm25, &mut r_bm25, None)?;
        run(
            &memory,
            &provenance,
            conversation,
            &hybrid,
            &mut r_hybrid,
            Some(&mut latencies_ms),
        )?;
        if let Some(model) = &model {
            let options = Options::new().embedder(Arc::clone(model) as Arc<dyn cairn::Embedder>);
            let (memory, provenance) = ingest_with(conversation, false, options)?;
            run(
                &memory,
                &provenance,
                conversation,
                &hybrid,
                &mut r_model,
                None,
            )?;
            if with_facts {
                let options =
                    Options::new().embedder(Arc::clone(model) as Arc<dyn cairn::Embedder>);
                let (memory, provenance) = ingest_with(conversation, true, options)?;
                run(
                    &memory,
                    &provenance,
                    conversation,
                    &hybrid_facts,
                    &mut r_model_facts,
                    None,
                )?;
            }
        }
        if with_facts {
            let (memory, provenance) = ingest(conversation, true)?;
            run(
                &memory,
                &provenance,
                conversation,
                &hybrid_facts,
                &mut r_facts,
                None,
            )?;
        }
    }
    latencies_ms.sort_by(f64::total_cmp);
    let p50 = percentile(&latencies_ms, 0.50);
    let p99 = percentile(&latencies_ms, 0.99);
    let (t_bm25, t_hybrid, t_facts) = (
        summarize(&r_bm25),
        summarize(&r_hybrid),
        summarize(&r_facts),
    );
    if json {
        let mut out = serde_json::json!({
            "bm25": table_json(&t_bm25),
            "hybrid": table_json(&t_hybrid),
            "latency_ms": { "p50": p50, "p99": p99 },
        });
        if with_facts {
            out["hybrid_with_observations"] = table_json(&t_facts);
        }
        if model.is_some() {
            out["hybrid_model"] = table_json(&summarize(&r_model));
            if with_facts {
                out["hybrid_model_with_observations"] = table_json(&summarize(&r_model_facts));
            }
        }
        println!("{out}");
    } else {
        print_table("bm25 (cairn, plain BM25 over turns)", &t_bm25);
        println!();
        print_table("hybrid (cairn default search over turns)", &t_hybrid);
        if with_facts {
            println!();
            print_table("hybrid + observation facts", &t_facts);
        }
        if model.is_some() {
            println!();
            print_table("hybrid with the model's vectors", &summarize(&r_model));
            if with_facts {
                println!();
                print_table(
                    "hybrid with the model's vectors + observation facts",
                    &summarize(&r_model_facts),
                );
            }
        }
        println!(
            "hybrid query latency: p50 {p50:.3} ms, p99 {p99:.3} ms over {} queries",
            latencies_ms.len()
        );
    }
    Ok(())
}

/// The lexical channel alone, then with a vector channel (the model's with `--model`,
/// else the hashing embedder's) fused by reciprocal rank, by score sum and by min-max
/// sum at several weights: the measurement behind the default fusion
/// (`docs/retrieval.md`).
fn fusion_study(
    conversations: &[Conversation],
    model: Option<Arc<common::Memo>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let base = SearchOptions::new().kinds(&[HitKind::Chunk]).limit(KS[2]);
    let mut variants: Vec<(String, SearchOptions)> = vec![
        ("no vectors".to_owned(), base.clone().vector_weight(0.0)),
        (
            "vectors only".to_owned(),
            base.clone()
                .bm25_weight(0.0)
                .graph_weight(0.0)
                .vector_weight(1.0),
        ),
    ];
    for w in [0.2f32, 0.5, 1.0] {
        for (name, fusion) in [
            ("rrf k=60", Fusion::ReciprocalRank { k: 60.0 }),
            ("score sum", Fusion::Score),
            ("min-max sum", Fusion::MinMax),
        ] {
            variants.push((
                format!("{name}, vector weight {w}"),
                base.clone().fusion(fusion).vector_weight(w),
            ));
        }
    }
    let mut recalls: Vec<Recalls> = variants.iter().map(|_| Recalls::new()).collect();
    let embedder: Arc<dyn cairn::Embedder> = match model {
        Some(model) => model,
        None => Arc::new(HashingEmbedder::default()),
    };
    let options = Options::new().embedder(embedder);
    for conversation in conversations {
        let (memory, provenance) = ingest_with(conversation, false, options.clone())?;
        for ((_, variant), r) in variants.iter().zip(&mut recalls) {
            run(&memory, &provenance, conversation, variant, r, None)?;
        }
    }
    println!(
        "{:<34} {:>10} {:>14} {:>10}",
        "variant", "c1-4 R@10", "multi-hop R@10", "c1-5 R@10"
    );
    for ((name, _), r) in variants.iter().zip(&recalls) {
        let t = summarize(r);
        let row = |n: &str| {
            t.iter()
                .find(|(name, _, _)| name == n)
                .map_or(0.0, |x| x.2[1])
        };
        println!(
            "{name:<34} {:>10.3} {:>14.3} {:>10.3}",
            row("cat1_4"),
            row("cat1"),
            row("cat1_5")
        );
    }
    Ok(())
}

/// One fresh memory holding a conversation (and its facts, if asked).
fn ingest(
    conversation: &Conversation,
    with_facts: bool,
) -> Result<(Memory, Provenance), Box<dyn std::error::Error>> {
    ingest_with(conversation, with_facts, Options::new())
}

fn ingest_with(
    conversation: &Conversation,
    with_facts: bool,
    options: Options,
) -> Result<(Memory, Provenance), Box<dyn std::error::Error>> {
    let memory = Memory::ephemeral_with(options)?;
    let mut provenance = Provenance::default();
    for speaker in &conversation.speakers {
        memory.ensure_entity(speaker)?;
    }
    for (n, session) in conversation.sessions.iter().enumerate() {
        let units: Vec<Unit> = session
            .iter()
            .map(|t| Unit::new(t.text.as_str()).metadata(serde_json::json!({ "dia_id": t.dia_id })))
            .collect();
        let (_, chunks) = memory.add_units(&format!("session_{}", n + 1), &units)?;
        for (chunk, turn) in chunks.into_iter().zip(session) {
            provenance.turns.insert(chunk, turn.dia_id.clone());
        }
    }
    if with_facts {
        for (speaker, fact, cited) in &conversation.facts {
            let id = memory.observe(speaker.as_str(), fact)?;
            provenance.facts.insert(id, cited.clone());
        }
    }
    common::settle(&memory)?;
    Ok((memory, provenance))
}

fn run(
    memory: &Memory,
    provenance: &Provenance,
    conversation: &Conversation,
    options: &SearchOptions,
    recalls: &mut Recalls,
    mut latencies_ms: Option<&mut Vec<f64>>,
) -> Result<(), Box<dyn std::error::Error>> {
    for q in &conversation.questions {
        let start = Instant::now();
        let hits = memory.search(&q.text, options)?;
        if let Some(l) = latencies_ms.as_deref_mut() {
            l.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        let ranked = ranked_dia_ids(&hits, provenance);
        recalls
            .entry(q.category)
            .or_default()
            .push(recall_at(&ranked, &q.gold));
    }
    Ok(())
}

/// Distinct dia_ids in rank order.
fn ranked_dia_ids(hits: &[cairn::Hit], provenance: &Provenance) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for hit in hits {
        let dia_ids: Vec<&String> = match hit.target {
            Target::Chunk(id) => provenance.turns.get(&id).into_iter().collect(),
            Target::Observation(id) => provenance.facts.get(&id).into_iter().flatten().collect(),
            _ => Vec::new(),
        };
        for dia in dia_ids {
            if seen.insert(dia.clone()) {
                out.push(dia.clone());
            }
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
fn summarize(recalls: &Recalls) -> Vec<(String, usize, [f64; 3])> {
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
    let speakers = ["speaker_a", "speaker_b"]
        .iter()
        .filter_map(|k| conv.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
        .collect();
    Ok(Conversation {
        speakers,
        sessions,
        facts: facts(record, &valid),
        questions,
    })
}

/// The `observation` field: per session, per speaker, `[fact, dia_id(s)]` pairs.
fn facts(record: &Value, valid: &HashSet<String>) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    let Some(sessions) = record["observation"].as_object() else {
        return out;
    };
    for by_speaker in sessions.values().filter_map(Value::as_object) {
        for (speaker, items) in by_speaker {
            for item in items.as_array().into_iter().flatten() {
                let Some(fact) = item.get(0).and_then(Value::as_str) else {
                    continue;
                };
                let cited = clean_evidence(
                    Some(&Value::Array(
                        item.as_array().map(|a| a[1..].to_vec()).unwrap_or_default(),
                    )),
                    valid,
                );
                if !cited.is_empty() {
                    out.push((speaker.clone(), fact.to_owned(), cited));
                }
            }
        }
    }
    out
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
