//! HotpotQA supporting-paragraph recall, as specified in `../shared/data/hotpotqa/EVAL.md`:
//! did the memory hand back the two paragraphs a multi-hop question needs? No LLM involved.
//!
//! ```sh
//! cargo run --release --example hotpotqa                    # the table
//! cargo run --release --example hotpotqa -- --json          # one JSON object
//! cargo run --release --example hotpotqa -- path/to/hotpot_train_100.json
//! cargo run --release --example hotpotqa -- --model DIR   # also the hybrid_model run
//! ```
//!
//! The dataset (CC BY-SA 4.0) is read from the shared data folder at run time; it is never
//! copied into this repository.
//!
//! Ingestion, never looking at questions, answers or supporting facts:
//! - every paragraph is one document of one unit, text `"<title>\n<sentences joined>"`,
//!   the title kept as unit metadata; the pooled memory holds each distinct
//!   (title, text) once (994 paragraphs);
//! - every title is an entity (a trailing disambiguator such as `" (film)"` stripped),
//!   created before the paragraphs, so mention linking connects every paragraph to the
//!   titles it names — the stand-in for an agent that extracted entity names;
//! - the document is declared to be about its title's entity ([`Document::about`];
//!   `--no-about` leaves that out, so only mention links connect them).
//!
//! Runs: `bm25` = [`SearchOptions::bm25_only`] over chunks; `hybrid` = the default search
//! over chunks; `hybrid_hashing` = the default search with the model-free
//! [`HashingEmbedder`]'s vectors. Only chunk hits count, mapped to their titles.
//! Latency is the pooled hybrid run's.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use cairn::{
    ChunkId, ChunkOptions, Document, Fusion, HashingEmbedder, HitKind, Memory, Options,
    SearchOptions, Target,
};
use serde_json::Value;

mod common;

/// recall@k reported for the pooled memory; the per-question memories report the first two.
const KS: [usize; 3] = [2, 5, 10];

struct Paragraph {
    title: String,
    text: String,
}

struct Question {
    text: String,
    /// Titles of its supporting facts.
    gold: Vec<String>,
    /// Indexes into the paragraph list of its own 10 paragraphs.
    own: Vec<usize>,
}

/// Mean recall@k over questions, for each k of [`KS`].
type Recall = [f64; 3];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let path = common::positional(&args)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/data/hotpotqa/hotpot_train_100.json")
        });
    let (paragraphs, questions) = load(&path)?;
    // `--no-about`: the documents do not say what they are about (mention links only).
    let about = !args.iter().any(|a| a == "--no-about");

    let model = common::model(&args)?;
    if args.iter().any(|a| a == "--study") {
        return study(&paragraphs, &questions, about, model);
    }
    let runs: Vec<(&str, Options, SearchOptions)> = vec![
        (
            "bm25",
            Options::new(),
            SearchOptions::new().bm25_only().kinds(&[HitKind::Chunk]),
        ),
        (
            "hybrid",
            Options::new(),
            SearchOptions::new().kinds(&[HitKind::Chunk]),
        ),
        (
            "hybrid_hashing",
            Options::new().embedder(Arc::new(HashingEmbedder::default())),
            SearchOptions::new().kinds(&[HitKind::Chunk]),
        ),
    ];
    let mut runs = runs;
    if let Some(model) = model {
        runs.push((
            "hybrid_model",
            Options::new().embedder(model),
            SearchOptions::new().kinds(&[HitKind::Chunk]),
        ));
    }
    let mut out = serde_json::Map::new();
    let mut latencies_ms = Vec::new();
    for (name, options, search) in &runs {
        let search = search.clone().limit(KS[2]);
        let record_latency = (*name == "hybrid").then_some(&mut latencies_ms);
        let pooled = pooled(
            &paragraphs,
            &questions,
            options,
            &search,
            about,
            record_latency,
        )?;
        let per_question = per_question(&paragraphs, &questions, options, &search, about)?;
        if !json {
            println!(
                "{name:<16} pooled R@2 {:.3}  R@5 {:.3}  R@10 {:.3}   per question R@2 {:.3}  R@5 {:.3}",
                pooled[0], pooled[1], pooled[2], per_question[0], per_question[1]
            );
        }
        out.insert(
            (*name).to_owned(),
            serde_json::json!({
                "pooled": { "r2": pooled[0], "r5": pooled[1], "r10": pooled[2] },
                "per_question": { "r2": per_question[0], "r5": per_question[1] },
            }),
        );
    }
    latencies_ms.sort_by(f64::total_cmp);
    let (p50, p99) = (
        percentile(&latencies_ms, 0.50),
        percentile(&latencies_ms, 0.99),
    );
    if json {
        out.insert(
            "latency_ms".to_owned(),
            serde_json::json!({ "p50": p50, "p99": p99 }),
        );
        println!("{}", Value::Object(out));
    } else {
        println!(
            "pooled hybrid query latency: p50 {p50:.3} ms, p99 {p99:.3} ms over {} queries",
            latencies_ms.len()
        );
    }
    Ok(())
}

/// Fusion methods and weights, each measured on the pooled memory and per question: the
/// measurement behind the defaults (`docs/retrieval.md`).
fn study(
    paragraphs: &[Paragraph],
    questions: &[Question],
    about: bool,
    model: Option<Arc<common::Memo>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let base = SearchOptions::new().kinds(&[HitKind::Chunk]).limit(KS[2]);
    let mut variants: Vec<(String, SearchOptions)> = vec![
        ("bm25 only".to_owned(), base.clone().bm25_only()),
        ("no graph".to_owned(), base.clone().depth(0)),
    ];
    for (name, fusion) in [
        ("score", Fusion::Score),
        ("minmax", Fusion::MinMax),
        ("rrf60", Fusion::ReciprocalRank { k: 60.0 }),
    ] {
        for graph in [0.25f32, 0.5, 1.0] {
            variants.push((
                format!("{name} graph {graph}"),
                base.clone().fusion(fusion).graph_weight(graph),
            ));
        }
    }
    // With a model (or HOTPOTQA_VECTORS=1: the hashing embedder) every variant also runs
    // at several vector weights; without, the vector channel is off.
    let embedder: Option<Arc<dyn cairn::Embedder>> = match model {
        Some(model) => Some(model),
        None if std::env::var("HOTPOTQA_VECTORS").is_ok() => {
            Some(Arc::new(HashingEmbedder::default()))
        }
        None => None,
    };
    let options = match &embedder {
        Some(e) => Options::new().embedder(Arc::clone(e)),
        None => Options::new(),
    };
    if embedder.is_some() {
        variants = vector_variants(&base, &variants);
    }
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "variant", "pool R@2", "pool R@5", "pool R@10", "pq R@2", "pq R@5"
    );
    for (name, variant) in &variants {
        let variant = if embedder.is_some() {
            variant.clone()
        } else {
            variant.clone().vector_weight(0.0)
        };
        let p = pooled(paragraphs, questions, &options, &variant, about, None)?;
        let q = per_question(paragraphs, questions, &options, &variant, about)?;
        println!(
            "{name:<28} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            p[0], p[1], p[2], q[0], q[1]
        );
    }
    Ok(())
}

/// Each fused variant at vector weights 0 (off), 0.2, 0.5 and 1.0, plus the vector
/// channel alone: the measurement behind the default vector weight.
fn vector_variants(
    base: &SearchOptions,
    variants: &[(String, SearchOptions)],
) -> Vec<(String, SearchOptions)> {
    let mut out = vec![(
        "vectors only".to_owned(),
        base.clone()
            .bm25_weight(0.0)
            .graph_weight(0.0)
            .vector_weight(1.0),
    )];
    for (name, variant) in variants {
        if name == "bm25 only" {
            out.push((name.clone(), variant.clone()));
            continue;
        }
        for w in [0.0f32, 0.2, 0.5, 1.0] {
            out.push((format!("{name}, vec {w}"), variant.clone().vector_weight(w)));
        }
    }
    out
}

/// Every paragraph in one memory; every question searched against it.
fn pooled(
    paragraphs: &[Paragraph],
    questions: &[Question],
    options: &Options,
    search: &SearchOptions,
    about: bool,
    mut latencies_ms: Option<&mut Vec<f64>>,
) -> Result<Recall, Box<dyn std::error::Error>> {
    let all: Vec<usize> = (0..paragraphs.len()).collect();
    let (memory, titles) = ingest(paragraphs, &all, options, about)?;
    let mut sum = [0.0; 3];
    for q in questions {
        let start = Instant::now();
        let hits = memory.search(&q.text, search)?;
        if let Some(l) = latencies_ms.as_deref_mut() {
            l.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        add(&mut sum, recall(&ranked_titles(&hits, &titles), &q.gold));
    }
    Ok(sum.map(|s| s / questions.len() as f64))
}

/// A fresh memory per question with only its own ten paragraphs.
fn per_question(
    paragraphs: &[Paragraph],
    questions: &[Question],
    options: &Options,
    search: &SearchOptions,
    about: bool,
) -> Result<Recall, Box<dyn std::error::Error>> {
    let mut sum = [0.0; 3];
    for q in questions {
        let (memory, titles) = ingest(paragraphs, &q.own, options, about)?;
        let hits = memory.search(&q.text, search)?;
        add(&mut sum, recall(&ranked_titles(&hits, &titles), &q.gold));
    }
    Ok(sum.map(|s| s / questions.len() as f64))
}

/// One fresh memory holding the paragraphs `which`; returns it and each chunk's title.
fn ingest(
    paragraphs: &[Paragraph],
    which: &[usize],
    options: &Options,
    about: bool,
) -> Result<(Memory, HashMap<ChunkId, String>), Box<dyn std::error::Error>> {
    let memory = Memory::ephemeral_with(options.clone())?;
    let mut titles = HashMap::new();
    for &i in which {
        memory.ensure_entity(entity_name(&paragraphs[i].title))?;
    }
    for &i in which {
        let p = &paragraphs[i];
        // One chunk per paragraph: the longest is 3,541 characters.
        let mut doc = Document::new(p.text.as_str())
            .source(p.title.as_str())
            .metadata(serde_json::json!({ "title": p.title }))
            .chunking(ChunkOptions::new().max_chars(8_000).overlap_chars(0));
        if about {
            doc = doc.about(entity_name(&p.title));
        }
        let (_, chunks) = memory.add_document(&doc)?;
        assert_eq!(chunks.len(), 1, "a paragraph is one chunk");
        for chunk in chunks {
            titles.insert(chunk, p.title.clone());
        }
    }
    common::settle(&memory)?;
    Ok((memory, titles))
}

/// A Wikipedia title without its trailing disambiguator: "Lilu (mythology)" → "Lilu".
fn entity_name(title: &str) -> &str {
    match title.rfind(" (") {
        Some(at) if title.ends_with(')') && at > 0 => &title[..at],
        _ => title,
    }
}

/// Distinct titles of the chunk hits, in rank order.
fn ranked_titles(hits: &[cairn::Hit], titles: &HashMap<ChunkId, String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for hit in hits {
        if let Target::Chunk(id) = hit.target
            && let Some(title) = titles.get(&id)
            && seen.insert(title.clone())
        {
            out.push(title.clone());
        }
    }
    out
}

fn recall(ranked: &[String], gold: &[String]) -> Recall {
    KS.map(|k| {
        let top: HashSet<&String> = ranked.iter().take(k).collect();
        gold.iter().filter(|g| top.contains(g)).count() as f64 / gold.len() as f64
    })
}

fn add(sum: &mut Recall, r: Recall) {
    for (s, x) in sum.iter_mut().zip(r) {
        *s += x;
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

/// The paragraphs, de-duplicated by (title, text), and the questions.
fn load(path: &PathBuf) -> Result<(Vec<Paragraph>, Vec<Question>), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data: Value = serde_json::from_str(&text)?;
    let records = data.as_array().ok_or("expected an array of questions")?;
    let mut paragraphs = Vec::new();
    let mut known: HashMap<(String, String), usize> = HashMap::new();
    let mut questions = Vec::new();
    for record in records {
        let mut own = Vec::new();
        for entry in record["context"]
            .as_array()
            .ok_or("record without context")?
        {
            let title = entry[0].as_str().ok_or("context entry without title")?;
            let sentences: Vec<&str> = entry[1]
                .as_array()
                .ok_or("context entry without sentences")?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let text = format!("{title}\n{}", sentences.concat());
            let key = (title.to_owned(), text.clone());
            let at = *known.entry(key).or_insert_with(|| {
                paragraphs.push(Paragraph {
                    title: title.to_owned(),
                    text,
                });
                paragraphs.len() - 1
            });
            own.push(at);
        }
        let mut gold: Vec<String> = Vec::new();
        for fact in record["supporting_facts"]
            .as_array()
            .ok_or("record without supporting_facts")?
        {
            let title = fact[0].as_str().ok_or("supporting fact without title")?;
            if !gold.iter().any(|g| g == title) {
                gold.push(title.to_owned());
            }
        }
        let question = record["question"]
            .as_str()
            .ok_or("record without question")?;
        questions.push(Question {
            text: question.to_owned(),
            gold,
            own,
        });
    }
    Ok((paragraphs, questions))
}
