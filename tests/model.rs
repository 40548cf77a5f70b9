//! The sentence-transformers embedder (feature `model`): reference vectors, the
//! query/passage split, the embedder bookkeeping of a file, paraphrase search, and bad
//! model directories. The model comes from `scripts/fetch-test-model.sh` (or
//! `CAIRN_TEST_MODEL`); without it these tests fail.
#![cfg(feature = "model")]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use cairn::{
    Embedder, Error, HashingEmbedder, HitKind, Memory, ModelProblem, Options, QueryPrecision,
    SearchOptions, SentenceEmbedder, Target,
};
use ndarray::{Array1, ArrayView1};

/// One embedder for the tests that use the model as it comes (loading takes a while).
fn model() -> Arc<SentenceEmbedder> {
    static MODEL: OnceLock<Arc<SentenceEmbedder>> = OnceLock::new();
    Arc::clone(
        MODEL.get_or_init(|| Arc::new(SentenceEmbedder::open(common::test_model_dir()).unwrap())),
    )
}

fn cosine(a: ArrayView1<'_, f32>, b: ArrayView1<'_, f32>) -> f32 {
    a.dot(&b) / (a.dot(&a).sqrt() * b.dot(&b).sqrt())
}

fn passage(embedder: &SentenceEmbedder, text: &str) -> Array1<f32> {
    embedder.embed_passages(&[text]).unwrap().row(0).to_owned()
}

#[test]
fn vectors_match_an_independent_implementation() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm-reference.json")).unwrap();
    let items = fixture["items"].as_array().unwrap();
    assert_eq!(items.len(), 11);
    let texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    let embedder = model();
    assert_eq!(embedder.dimension(), 384);
    assert_eq!(embedder.max_tokens(), 256);
    // All at once: sorted by length, padded per batch; each row must still be its text's.
    let rows = embedder.embed_passages(&texts).unwrap();
    assert_eq!(rows.dim(), (11, 384));
    for ((item, text), row) in items.iter().zip(&texts).zip(rows.rows()) {
        let want: Array1<f32> = item["vector"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let similarity = cosine(row, want.view());
        assert!(similarity >= 0.999, "{text:?}: cosine {similarity}");
        assert!(
            (row.dot(&row).sqrt() - 1.0).abs() < 1e-4,
            "{text:?} not unit length"
        );
        if let Some(tokens) = item["tokens"].as_u64() {
            assert_eq!(
                embedder.count_tokens(text).unwrap() as u64,
                tokens,
                "{text:?}"
            );
        }
        // Alone, without padding, the same vector.
        let alone = passage(&embedder, text);
        assert!(
            cosine(alone.view(), row) > 0.99999,
            "{text:?} differs in a batch"
        );
    }
    // The last text is longer than the model's window: it was cut at 256 tokens.
    assert!(texts[10].split(' ').count() > 256);
}

/// The reference texts as queries, in each query precision: every vector within cosine
/// 0.999 of the reference (the passages' bound), and the least cosine printed.
#[test]
fn query_vectors_in_every_precision_match_the_reference() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm-reference.json")).unwrap();
    let items = fixture["items"].as_array().unwrap();
    assert_eq!(items.len(), 11);
    for precision in [
        QueryPrecision::F32,
        QueryPrecision::Bf16,
        QueryPrecision::Int8,
    ] {
        let embedder = SentenceEmbedder::builder(common::test_model_dir())
            .query_precision(precision)
            .build()
            .unwrap();
        assert_eq!(embedder.query_precision(), precision);
        let mut least = (f32::INFINITY, "");
        for item in items {
            let text = item["text"].as_str().unwrap();
            let want: Array1<f32> = item["vector"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let got = embedder.embed_query(text).unwrap();
            let similarity = cosine(got.view(), want.view());
            if similarity < least.0 {
                least = (similarity, text);
            }
            assert!(
                similarity >= 0.999,
                "{precision:?} {text:?}: cosine {similarity}"
            );
            // The passage of the same text is the f32 one whatever the query precision.
            let stored = passage(&embedder, text);
            assert!(cosine(stored.view(), want.view()) >= 0.999);
        }
        println!(
            "{precision:?}: least cosine to the reference {:.6} ({:?})",
            least.0, least.1
        );
    }
    assert_eq!(QueryPrecision::default(), QueryPrecision::Bf16);
}

#[test]
fn queries_and_passages_get_their_own_prefixes() {
    let dir = common::test_model_dir();
    let plain = model();
    assert_eq!((plain.query_prefix(), plain.passage_prefix()), ("", ""));
    // Without prefixes a query is embedded as a passage: exactly so with the f32 weights
    // for queries, within the reduced precision's error with the default.
    let text = "what food does she like";
    let full = SentenceEmbedder::builder(&dir)
        .query_precision(QueryPrecision::F32)
        .build()
        .unwrap();
    assert_eq!(full.embed_query(text).unwrap(), passage(&plain, text));
    assert_eq!(
        full.id(),
        plain.id(),
        "the query precision is not in the id"
    );
    let reduced = cosine(
        plain.embed_query(text).unwrap().view(),
        passage(&plain, text).view(),
    );
    assert!((0.999..1.0 + 1e-6).contains(&reduced), "{reduced}");

    let prefixed = SentenceEmbedder::builder(&dir)
        .query_prefix("query: ")
        .passage_prefix("passage: ")
        .query_precision(QueryPrecision::F32)
        .build()
        .unwrap();
    let query = prefixed.embed_query(text).unwrap();
    let stored = passage(&prefixed, text);
    let apart = cosine(query.view(), stored.view());
    assert!(apart < 0.999, "query and passage vectors agree: {apart}");
    // Each side is the plain model on the prefixed text.
    let as_query = passage(&plain, &format!("query: {text}"));
    let as_passage = passage(&plain, &format!("passage: {text}"));
    assert!(cosine(query.view(), as_query.view()) > 0.99999);
    assert!(cosine(stored.view(), as_passage.view()) > 0.99999);
    assert_eq!(
        prefixed.count_tokens(text).unwrap(),
        plain.count_tokens(text).unwrap() + 2,
        "\"passage: \" is two tokens"
    );
    // Vectors of the same text changed, so the id did.
    assert_ne!(prefixed.id(), plain.id());
    let only_query = SentenceEmbedder::builder(&dir)
        .query_prefix("query: ")
        .build()
        .unwrap();
    assert!(![plain.id(), prefixed.id()].contains(&only_query.id()));
}

#[test]
fn prompts_come_from_the_model_directory_unless_the_builder_says_otherwise() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = linked_copy(&common::test_model_dir(), scratch.path());
    std::fs::write(
        dir.join("config_sentence_transformers.json"),
        r#"{"prompts": {"query": "query: ", "document": "passage: "}, "default_prompt_name": null}"#,
    )
    .unwrap();
    let from_files = SentenceEmbedder::open(&dir).unwrap();
    assert_eq!(from_files.query_prefix(), "query: ");
    assert_eq!(from_files.passage_prefix(), "passage: ");
    let from_builder = SentenceEmbedder::builder(common::test_model_dir())
        .query_prefix("query: ")
        .passage_prefix("passage: ")
        .build()
        .unwrap();
    // The same vectors, the same id, wherever the prefixes were written down.
    assert_eq!(from_files.id(), from_builder.id());
    let overridden = SentenceEmbedder::builder(&dir)
        .query_prefix("")
        .build()
        .unwrap();
    assert_eq!(overridden.query_prefix(), "");
    assert_eq!(overridden.passage_prefix(), "passage: ");
}

#[test]
fn the_id_names_the_model_and_is_stable() {
    let embedder = model();
    let id = embedder.id();
    assert!(id.starts_with("st-MiniLM-L6-H384-uncased-384d-"), "{id}");
    assert_eq!(
        id.len(),
        "st-MiniLM-L6-H384-uncased-384d-".len() + 16,
        "{id}"
    );
    let again = SentenceEmbedder::open(common::test_model_dir()).unwrap();
    assert_eq!(again.id(), id);
    assert_eq!(embedder.name(), "MiniLM-L6-H384-uncased");
}

#[test]
fn a_file_written_with_the_model_refuses_other_embedders_and_vice_versa() {
    let dir = tempfile::tempdir().unwrap();
    let with_model = dir.path().join("model.db");
    let with_hashing = dir.path().join("hashing.db");
    let model_options = || common::options().embedder(model());
    // Same dimension, other model: refused by id.
    let hashing_options =
        || common::options().embedder(Arc::new(HashingEmbedder::new(384).unwrap()));
    for (path, options) in [
        (&with_model, model_options()),
        (&with_hashing, hashing_options()),
    ] {
        let m = Memory::open_with(path, options).unwrap();
        m.observe("Ann", "I love sushi").unwrap();
        m.sync().unwrap();
    }
    let refused = |path: &Path, options: Options, stored: &str, given: &str| {
        let err = Memory::open_with(path, options).unwrap_err();
        assert!(
            matches!(&err, Error::EmbedderMismatch { stored: s, given: g }
                if s.contains(stored) && g.contains(given)),
            "{err}"
        );
    };
    let model_id = model().id().to_owned();
    refused(
        &with_model,
        hashing_options(),
        &model_id,
        "cairn-hash-v1-384",
    );
    refused(
        &with_hashing,
        model_options(),
        "cairn-hash-v1-384",
        &model_id,
    );
    // Without an embedder the memory only reads.
    let bare = Memory::open_with(&with_model, common::options()).unwrap();
    assert!(bare.missing_embedder().unwrap().contains(&model_id));
    let err = bare.observe("Ann", "likes tea").unwrap_err();
    assert!(matches!(err, Error::EmbedderMismatch { .. }), "{err}");
    drop(bare);
    // The same model with other prefixes makes other vectors: refused too.
    let prefixed = SentenceEmbedder::builder(common::test_model_dir())
        .passage_prefix("passage: ")
        .build()
        .unwrap();
    refused(
        &with_model,
        common::options().embedder(Arc::new(prefixed)),
        &model_id,
        "st-MiniLM",
    );
    // The same model again is fine.
    let m = Memory::open_with(&with_model, model_options()).unwrap();
    assert_eq!(m.stats().unwrap().observations, 1);
}

#[test]
fn a_paraphrase_is_found_by_meaning_with_the_model_only() {
    let observations = [
        "I love sushi",
        "Works night shifts as a nurse in Boston",
        "The quarterly report is due on Friday",
        "Drives a blue car to the office",
        "The meeting moved to room 4",
    ];
    let query = "what food does she like";
    let search = |options: Options| -> (Vec<Target>, Target) {
        let m = Memory::ephemeral_with(options).unwrap();
        let ids: Vec<_> = observations
            .iter()
            .map(|text| m.observe("Caroline", text).unwrap())
            .collect();
        m.sync().unwrap();
        let hits = m.search(query, &SearchOptions::new()).unwrap();
        (
            hits.into_iter().map(|h| h.target).collect(),
            Target::Observation(ids[0]),
        )
    };
    let (hits, sushi) = search(common::options().embedder(model()));
    let first_observation = hits
        .iter()
        .find(|t| matches!(t, Target::Observation(_)))
        .copied();
    assert_eq!(first_observation, Some(sushi), "{hits:?}");
    assert!(hits.iter().take(3).any(|t| *t == sushi), "{hits:?}");

    let (hits, sushi) = search(common::options());
    assert!(!hits.contains(&sushi), "found without a model: {hits:?}");
    let observations_only = SearchOptions::new().kinds(&[HitKind::Observation]);
    let m = Memory::ephemeral_with(common::options()).unwrap();
    m.observe("Caroline", "I love sushi").unwrap();
    m.sync().unwrap();
    assert!(m.search(query, &observations_only).unwrap().is_empty());
}

/// A model directory in `into` whose files link to those of `model` (so one of them can
/// be replaced without copying 90 MB).
fn linked_copy(model: &Path, into: &Path) -> PathBuf {
    let dir = into.join("model");
    std::fs::create_dir_all(dir.join("1_Pooling")).unwrap();
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "sentence_bert_config.json",
        "1_Pooling/config.json",
    ] {
        std::os::unix::fs::symlink(model.join(file), dir.join(file)).unwrap();
    }
    dir
}

/// Which problem a bad model directory must report.
type Expected = fn(&ModelProblem) -> bool;

fn replace(dir: &Path, file: &str, contents: Option<&str>) {
    std::fs::remove_file(dir.join(file)).unwrap();
    if let Some(contents) = contents {
        std::fs::write(dir.join(file), contents).unwrap();
    }
}

#[test]
fn bad_model_directories_are_typed_errors_naming_the_file() {
    let model = common::test_model_dir();
    let expect = |dir: &Path, file: &str, want: fn(&ModelProblem) -> bool| {
        let err = SentenceEmbedder::open(dir).unwrap_err();
        match &err {
            Error::Model { path, problem } => {
                assert_eq!(path, &dir.join(file), "{err}");
                assert!(want(problem), "{err}");
                assert!(
                    err.to_string()
                        .contains(&dir.join(file).display().to_string())
                );
            }
            other => panic!("not a model error: {other}"),
        }
    };
    let missing = |p: &ModelProblem| *p == ModelProblem::Missing;
    let malformed = |p: &ModelProblem| matches!(p, ModelProblem::Malformed(_));
    let unsupported = |p: &ModelProblem| matches!(p, ModelProblem::Unsupported(_));

    let scratch = tempfile::tempdir().unwrap();
    expect(&scratch.path().join("nowhere"), "config.json", missing);

    let cases: [(&str, Option<&str>, Expected); 9] = [
        ("config.json", Some("{ not json"), malformed),
        ("config.json", Some(r#"{"model_type": "bert"}"#), malformed),
        ("config.json", Some(r#"{"model_type": "t5"}"#), unsupported),
        ("1_Pooling/config.json", None, missing),
        (
            "1_Pooling/config.json",
            Some(r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true}"#),
            unsupported,
        ),
        ("sentence_bert_config.json", Some("[]"), malformed),
        ("tokenizer.json", Some("{}"), malformed),
        ("model.safetensors", None, missing),
        ("model.safetensors", Some("garbage, not tensors"), malformed),
    ];
    for (i, (file, contents, want)) in cases.into_iter().enumerate() {
        let dir = linked_copy(&model, &scratch.path().join(i.to_string()));
        replace(&dir, file, contents);
        expect(&dir, file, want);
    }
}
