//! Reading a sentence-transformers model directory: every file is checked here, so a
//! missing or damaged one is reported with its path before any weight is loaded.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use candle_transformers::models::bert;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokenizers::Tokenizer;

use crate::error::{Error, ModelProblem, Result};

/// The files of a model directory, relative to it.
pub(super) const CONFIG: &str = "config.json";
pub(super) const WEIGHTS: &str = "model.safetensors";
pub(super) const TOKENIZER: &str = "tokenizer.json";
pub(super) const POOLING: &str = "1_Pooling/config.json";
pub(super) const SENTENCE_BERT: &str = "sentence_bert_config.json";
/// Optional: holds the model's query/passage `prompts` when it was trained with them.
pub(super) const PROMPTS: &str = "config_sentence_transformers.json";

/// Everything read from a model directory, validated, before the model is built.
pub(super) struct ModelFiles {
    pub(super) config: bert::Config,
    pub(super) weights: Vec<u8>,
    pub(super) tokenizer: Tokenizer,
    /// The model's own name, from `config.json` (`_name_or_path`, else `model_type`).
    pub(super) name: String,
    /// `max_seq_length` of `sentence_bert_config.json`, capped at the positions the
    /// model has.
    pub(super) max_tokens: usize,
    /// The prompts of `config_sentence_transformers.json`, if it names any.
    pub(super) query_prompt: Option<String>,
    pub(super) passage_prompt: Option<String>,
    /// SHA-256 over every file that decides the vectors, in a fixed order.
    pub(super) digest: Sha256,
}

/// The parts of `config.json` that say which architecture it is.
#[derive(Deserialize)]
struct Architecture {
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default, rename = "_name_or_path")]
    name_or_path: Option<String>,
}

/// `1_Pooling/config.json`. Unknown modes of newer sentence-transformers versions land
/// in `other`, so a pooling this code does not know is refused rather than ignored.
#[derive(Deserialize)]
struct Pooling {
    word_embedding_dimension: usize,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(flatten)]
    other: HashMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct SentenceBert {
    max_seq_length: usize,
}

#[derive(Deserialize, Default)]
struct Prompts {
    #[serde(default)]
    prompts: HashMap<String, String>,
}

impl ModelFiles {
    /// Reads and checks every file of `dir`.
    pub(super) fn read(dir: &Path) -> Result<Self> {
        let mut digest = Sha256::new();
        // Every part is length-prefixed, so moving bytes between two files cannot give
        // the same digest.
        let mut feed = |bytes: &[u8]| {
            digest.update((bytes.len() as u64).to_le_bytes());
            digest.update(bytes);
        };

        let (config_bytes, config_path) = read(dir, CONFIG)?;
        let architecture: Architecture = parse(&config_bytes, &config_path)?;
        if let Some(kind) = &architecture.model_type
            && kind != "bert"
        {
            return Err(Error::model(
                config_path,
                ModelProblem::Unsupported(format!(
                    "model_type {kind:?}; only BERT-family models (\"bert\") run here"
                )),
            ));
        }
        let config: bert::Config = parse(&config_bytes, &config_path)?;
        feed(&config_bytes);

        let (pooling_bytes, pooling_path) = read(dir, POOLING)?;
        check_pooling(
            &parse(&pooling_bytes, &pooling_path)?,
            &config,
            &pooling_path,
        )?;
        feed(&pooling_bytes);

        let (sbert_bytes, sbert_path) = read(dir, SENTENCE_BERT)?;
        let sbert: SentenceBert = parse(&sbert_bytes, &sbert_path)?;
        if sbert.max_seq_length == 0 {
            return Err(Error::model(
                sbert_path,
                ModelProblem::Malformed("max_seq_length is 0".to_owned()),
            ));
        }
        // Position embeddings end at max_position_embeddings: a longer input would index
        // past them.
        let max_tokens = sbert.max_seq_length.min(config.max_position_embeddings);
        feed(&max_tokens.to_le_bytes());

        let (tokenizer_bytes, tokenizer_path) = read(dir, TOKENIZER)?;
        let tokenizer = Tokenizer::from_bytes(&tokenizer_bytes)
            .map_err(|e| Error::model(&tokenizer_path, ModelProblem::Malformed(e.to_string())))?;
        feed(&tokenizer_bytes);

        let prompts = match read(dir, PROMPTS) {
            Ok((bytes, path)) => parse::<Prompts>(&bytes, &path)?,
            Err(Error::Model {
                problem: ModelProblem::Missing,
                ..
            }) => Prompts::default(),
            Err(other) => return Err(other),
        };
        let query_prompt = prompts.prompts.get("query").cloned();
        // sentence-transformers names the stored side "passage" or "document".
        let passage_prompt = ["passage", "document"]
            .iter()
            .find_map(|key| prompts.prompts.get(*key).cloned());

        let (weights, _) = read(dir, WEIGHTS)?;
        feed(&weights);

        let name = architecture
            .name_or_path
            .or(architecture.model_type)
            .unwrap_or_else(|| "bert".to_owned());
        Ok(ModelFiles {
            config,
            weights,
            tokenizer,
            name: clean_name(&name),
            max_tokens,
            query_prompt,
            passage_prompt,
            digest,
        })
    }
}

/// Only mean pooling is implemented; CLS, max or weighted poolings give other vectors,
/// so a model asking for one is refused instead of being embedded wrongly.
fn check_pooling(pooling: &Pooling, config: &bert::Config, path: &Path) -> Result<()> {
    let problem = if pooling.word_embedding_dimension != config.hidden_size {
        ModelProblem::Malformed(format!(
            "word_embedding_dimension {} differs from the model's hidden_size {}",
            pooling.word_embedding_dimension, config.hidden_size
        ))
    } else if let Some(mode) = pooling
        .other
        .iter()
        .filter(|(key, value)| key.starts_with("pooling_mode") && **value != false)
        .map(|(key, _)| key)
        .min()
    {
        ModelProblem::Unsupported(format!("{mode}; only mean pooling is implemented"))
    } else if !pooling.pooling_mode_mean_tokens {
        ModelProblem::Unsupported(
            "pooling_mode_mean_tokens is not set; only mean pooling is implemented".to_owned(),
        )
    } else {
        return Ok(());
    };
    Err(Error::model(path, problem))
}

/// The last path segment of a name like `sentence-transformers/all-MiniLM-L6-v2`, in
/// characters safe for an id, at most 64 of them.
pub(super) fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(64)
        .collect();
    if cleaned.is_empty() {
        "bert".to_owned()
    } else {
        cleaned
    }
}

fn read(dir: &Path, file: &str) -> Result<(Vec<u8>, PathBuf)> {
    let path = dir.join(file);
    match std::fs::read(&path) {
        Ok(bytes) => Ok((bytes, path)),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::model(path, ModelProblem::Missing)),
        Err(e) => Err(Error::model(path, ModelProblem::Unreadable(e.to_string()))),
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8], path: &Path) -> Result<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::model(path, ModelProblem::Malformed(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pooling(json: &str) -> Pooling {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn only_mean_pooling_of_the_right_width_passes() {
        let config = bert::Config {
            hidden_size: 384,
            ..bert::Config::default()
        };
        let path = Path::new("m/1_Pooling/config.json");
        let mean = r#"{"word_embedding_dimension": 384, "pooling_mode_mean_tokens": true,
            "pooling_mode_cls_token": false, "pooling_mode_max_tokens": false}"#;
        assert!(check_pooling(&pooling(mean), &config, path).is_ok());

        for (json, want) in [
            (
                r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": true}"#,
                "pooling_mode_cls_token",
            ),
            (
                r#"{"word_embedding_dimension": 384, "pooling_mode_mean_tokens": true,
                    "pooling_mode_lasttoken": true}"#,
                "pooling_mode_lasttoken",
            ),
            (
                r#"{"word_embedding_dimension": 384}"#,
                "pooling_mode_mean_tokens is not set",
            ),
        ] {
            let err = check_pooling(&pooling(json), &config, path).unwrap_err();
            match &err {
                Error::Model {
                    path: at,
                    problem: ModelProblem::Unsupported(why),
                } => assert!(at == path && why.contains(want), "{err}"),
                other => panic!("{other}"),
            }
        }
        let wide = r#"{"word_embedding_dimension": 768, "pooling_mode_mean_tokens": true}"#;
        let err = check_pooling(&pooling(wide), &config, path).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Model {
                    problem: ModelProblem::Malformed(_),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn names_are_cut_to_a_safe_last_segment() {
        assert_eq!(
            clean_name("sentence-transformers/all-MiniLM-L6-v2"),
            "all-MiniLM-L6-v2"
        );
        assert_eq!(clean_name("C:\\models\\e5 small"), "e5small");
        assert_eq!(clean_name("///"), "bert");
        assert_eq!(clean_name(&"x".repeat(100)).len(), 64);
    }
}
