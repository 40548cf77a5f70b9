//! A deterministic synthetic memory for `benches/search.rs`: 100,000 entities, 500,000
//! relations (a few hub entities with thousands of edges each) and 100,000 chunks of
//! 40–80 words, plus the query set. Everything comes from seeded `StdRng`s, so every
//! run generates the same names, triples, texts and queries.
//!
//! Words: English stop words take the top ranks of a Zipf (s = 1) distribution, followed
//! by 20,000 pronounceable pseudo-words ("kavoru"), so after stop-word removal the most
//! frequent content word appears in roughly a fifth of the chunks, as in real text.
//! Entity names are pseudo-words of their own (capitalized, unique), 30 % of them followed
//! by a common suffix ("Labs", "River"...). Chunks mention 1–3 entities by name.
//!
//! Change [`GENERATOR_VERSION`] whenever anything here changes what is generated: the
//! bench keys its cached database files by it.

use std::collections::HashSet;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Bump when the generated data changes; cached files are named after it.
pub const GENERATOR_VERSION: u32 = 1;

pub const ENTITIES: usize = 100_000;
pub const RELATIONS: usize = 500_000;
pub const CHUNKS: usize = 100_000;
/// Entities with thousands of relations each.
pub const HUBS: usize = 20;
/// Relations with a hub at one end (about 3,000 per hub).
const HUB_RELATIONS: usize = 60_000;
/// Existing triples asserted once more (raises their `mentions`; adds no relation).
const REPEATS: usize = 25_000;
pub const QUERIES: usize = 200;
/// Content (non-stop) words in the vocabulary.
const CONTENT_WORDS: usize = 20_000;

const SEED: u64 = 0x00ca_1262_0001;

/// Lucene's English stop words (tantivy's `StopWordFilter` for English): the most
/// frequent words of the generated text, dropped by cairn's analyzer.
const STOP_WORDS: [&str; 33] = [
    "the", "of", "and", "to", "a", "in", "is", "that", "it", "for", "was", "on", "with", "as",
    "be", "by", "at", "this", "are", "or", "but", "not", "they", "an", "their", "there", "will",
    "if", "no", "into", "such", "then", "these",
];

/// Predicates of the relations (50).
pub const PREDICATES: [&str; 50] = [
    "works at",
    "knows",
    "founded",
    "acquired",
    "based in",
    "invested in",
    "reports to",
    "partners with",
    "manages",
    "owns",
    "supplies",
    "competes with",
    "located in",
    "member of",
    "part of",
    "advises",
    "funds",
    "hired",
    "sued",
    "licensed",
    "mentored",
    "married",
    "sibling of",
    "parent of",
    "studied at",
    "taught at",
    "wrote",
    "published",
    "reviewed",
    "cited",
    "built",
    "designed",
    "maintains",
    "uses",
    "depends on",
    "replaced",
    "merged with",
    "spun off",
    "sponsors",
    "hosts",
    "visited",
    "met",
    "called",
    "emailed",
    "recommended",
    "criticized",
    "praised",
    "audited",
    "insured",
    "shipped to",
];

const NAME_SUFFIXES: [&str; 24] = [
    "Labs",
    "Group",
    "Holdings",
    "Systems",
    "Institute",
    "Foundation",
    "River",
    "Valley",
    "Station",
    "Partners",
    "Capital",
    "Works",
    "Studio",
    "Project",
    "Council",
    "Bank",
    "Press",
    "Harbor",
    "Clinic",
    "Academy",
    "Network",
    "Trust",
    "Mills",
    "Observatory",
];

const ONSETS: [&str; 22] = [
    "b", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr",
    "kr", "st", "tr", "sh",
];
const VOWELS: [&str; 6] = ["a", "i", "o", "u", "ai", "ou"];
const CODAS: [&str; 6] = ["", "n", "r", "l", "k", "m"];

/// A pronounceable lowercase pseudo-word of `syllables` syllables.
fn pseudo_word(rng: &mut StdRng, syllables: usize) -> String {
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(ONSETS[rng.random_range(0..ONSETS.len())]);
        w.push_str(VOWELS[rng.random_range(0..VOWELS.len())]);
    }
    w.push_str(CODAS[rng.random_range(0..CODAS.len())]);
    w
}

fn capitalize(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Sampling from ranks 0..n with probability proportional to 1 / (rank + 1)^s.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cdf = (0..n)
            .map(|r| {
                total += 1.0 / ((r + 1) as f64).powf(s);
                total
            })
            .collect();
        Zipf { cdf }
    }

    /// A rank in `from..n` (the distribution conditioned on rank >= `from`).
    pub fn sample_from(&self, rng: &mut StdRng, from: usize) -> usize {
        let lo = if from == 0 { 0.0 } else { self.cdf[from - 1] };
        let hi = *self.cdf.last().unwrap();
        let u = lo + rng.random::<f64>() * (hi - lo);
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// One relation: subject index, predicate index, object index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rel {
    pub subject: u32,
    pub predicate: u8,
    pub object: u32,
}

/// The names and words every part of the data is drawn from.
pub struct Synthetic {
    /// Entity display names; entities `0..HUBS` are the hubs.
    pub entities: Vec<String>,
    /// Stop words first, then content words, by decreasing frequency.
    pub vocab: Vec<String>,
    pub zipf: Zipf,
}

impl Synthetic {
    pub fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(SEED);
        let mut seen: HashSet<String> = HashSet::new();
        let mut vocab: Vec<String> = STOP_WORDS.iter().map(|w| w.to_string()).collect();
        while vocab.len() < STOP_WORDS.len() + CONTENT_WORDS {
            let syllables = rng.random_range(2..=3);
            let w = pseudo_word(&mut rng, syllables);
            if seen.insert(w.clone()) {
                vocab.push(w);
            }
        }
        let mut entities = Vec::with_capacity(ENTITIES);
        while entities.len() < ENTITIES {
            let syllables = rng.random_range(3..=4);
            let w = pseudo_word(&mut rng, syllables);
            if !seen.insert(w.clone()) {
                continue;
            }
            let mut name = capitalize(&w);
            if rng.random_bool(0.3) {
                name.push(' ');
                name.push_str(NAME_SUFFIXES[rng.random_range(0..NAME_SUFFIXES.len())]);
            }
            entities.push(name);
        }
        let zipf = Zipf::new(vocab.len(), 1.0);
        Synthetic {
            entities,
            vocab,
            zipf,
        }
    }

    pub fn is_hub(&self, entity: usize) -> bool {
        entity < HUBS
    }

    /// An entity: a hub with probability `hub_p`, otherwise uniform over all of them.
    pub fn pick_entity(&self, rng: &mut StdRng, hub_p: f64) -> usize {
        if rng.random_bool(hub_p) {
            rng.random_range(0..HUBS)
        } else {
            rng.random_range(0..ENTITIES)
        }
    }

    /// A word of running text (stop words included).
    pub fn text_word(&self, rng: &mut StdRng) -> &str {
        &self.vocab[self.zipf.sample_from(rng, 0)]
    }

    /// A content word (what a query would contain).
    pub fn content_word(&self, rng: &mut StdRng) -> &str {
        &self.vocab[self.zipf.sample_from(rng, STOP_WORDS.len())]
    }

    /// The `RELATIONS` distinct triples, then `REPEATS` re-assertions of some of them.
    /// Every entity is the subject of at least one triple, so all of them get created.
    pub fn relations(&self) -> (Vec<Rel>, Vec<Rel>) {
        let mut rng = StdRng::seed_from_u64(SEED + 1);
        let mut seen: HashSet<Rel> = HashSet::with_capacity(RELATIONS);
        let mut out = Vec::with_capacity(RELATIONS);
        let mut push = |rel: Rel, out: &mut Vec<Rel>| {
            if rel.subject != rel.object && seen.insert(rel) {
                out.push(rel);
            }
        };
        let predicate = |rng: &mut StdRng| rng.random_range(0..PREDICATES.len()) as u8;
        for s in 0..ENTITIES {
            while out.len() == s {
                let rel = Rel {
                    subject: s as u32,
                    predicate: predicate(&mut rng),
                    object: rng.random_range(0..ENTITIES) as u32,
                };
                push(rel, &mut out);
            }
        }
        while out.len() < ENTITIES + HUB_RELATIONS {
            let hub = rng.random_range(0..HUBS) as u32;
            let other = rng.random_range(0..ENTITIES) as u32;
            let (subject, object) = if rng.random_bool(0.5) {
                (hub, other)
            } else {
                (other, hub)
            };
            let rel = Rel {
                subject,
                predicate: predicate(&mut rng),
                object,
            };
            push(rel, &mut out);
        }
        while out.len() < RELATIONS {
            let rel = Rel {
                subject: rng.random_range(0..ENTITIES) as u32,
                predicate: predicate(&mut rng),
                object: rng.random_range(0..ENTITIES) as u32,
            };
            push(rel, &mut out);
        }
        out.shuffle(&mut rng);
        let repeats = (0..REPEATS)
            .map(|_| out[rng.random_range(0..out.len())])
            .collect();
        (out, repeats)
    }

    /// A chunk of 40–80 words in sentences of 6–16 words, naming 1–3 entities.
    pub fn chunk_text(&self, rng: &mut StdRng) -> String {
        let words = rng.random_range(40..=80);
        let mentions = rng.random_range(1..=3);
        let mut parts: Vec<String> = (0..words).map(|_| self.text_word(rng).to_owned()).collect();
        for _ in 0..mentions {
            let e = self.pick_entity(rng, 0.1);
            let at = rng.random_range(0..=parts.len());
            parts.insert(at, self.entities[e].clone());
        }
        let mut text = String::with_capacity(words * 8);
        let mut left_in_sentence = 0;
        for part in parts {
            if left_in_sentence == 0 {
                if !text.is_empty() {
                    text.push_str(". ");
                }
                text.push_str(&capitalize(&part));
                left_in_sentence = rng.random_range(6..=16);
            } else {
                text.push(' ');
                text.push_str(&part);
            }
            left_in_sentence -= 1;
        }
        text.push('.');
        text
    }

    /// The `CHUNKS` chunk texts, in insertion order.
    pub fn chunks(&self) -> Vec<String> {
        let mut rng = StdRng::seed_from_u64(SEED + 2);
        (0..CHUNKS).map(|_| self.chunk_text(&mut rng)).collect()
    }

    /// The query set: 2–4 words each, mixing entity names (10 % of them hubs) and content
    /// words.
    pub fn queries(&self) -> Vec<Query> {
        let mut rng = StdRng::seed_from_u64(SEED + 3);
        (0..QUERIES)
            .map(|_| {
                let words = rng.random_range(2..=4);
                let entities: usize = match rng.random_range(0..100) {
                    0..25 => 0,
                    25..80 => 1,
                    _ => 2,
                };
                let mut parts = Vec::new();
                let mut hub = false;
                for _ in 0..entities {
                    let e = self.pick_entity(&mut rng, 0.1);
                    hub |= self.is_hub(e);
                    parts.push(self.entities[e].clone());
                }
                while parts.len() < words.max(entities + 1) {
                    parts.push(self.content_word(&mut rng).to_owned());
                }
                parts.shuffle(&mut rng);
                Query {
                    text: parts.join(" "),
                    entities,
                    hub,
                }
            })
            .collect()
    }
}

/// One benchmark query.
pub struct Query {
    pub text: String,
    /// Entity names in it.
    pub entities: usize,
    /// Whether one of them is a hub.
    pub hub: bool,
}
