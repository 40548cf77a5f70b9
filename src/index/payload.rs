//! What each index commit records (its tantivy commit payload): the schema it was built
//! with, the last change-log `seq` it applied, how far the derived rows (mention links,
//! vectors) were in the file when it committed, and the identity of the file it was
//! built from (`meta` key `file_id`, see `db::identity`).

use crate::index::repair::Damage;
use crate::index::schema::SCHEMA_TAG;

/// A decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Payload {
    /// Every change up to this `seq` is in the index.
    pub(crate) seq: i64,
    /// The derived rows of every change up to this `seq` were in the file when the index
    /// committed (see [`crate::index::derived`]); a holder that takes over resumes from
    /// here if the file records less. An index committed before derived rows were
    /// written after the commit wrote them first: there it is `seq`.
    pub(crate) derived: i64,
    /// The file the index was built from; `None` in an index older than file ids.
    pub(crate) file: Option<String>,
}

/// The payload of a commit that applied every change up to `seq` of the file `file`,
/// whose derived rows are in the file up to `derived`.
pub(super) fn encode(seq: i64, derived: i64, file: Option<&str>) -> String {
    serde_json::json!({ "schema": SCHEMA_TAG, "seq": seq, "derived": derived.min(seq), "file": file })
        .to_string()
}

/// The payload a commit recorded; `None` when it is not one of this schema's (an index
/// never committed, or written by another cairn version: it is built again from 0).
pub(super) fn decode(text: &str) -> Option<Payload> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    (value.get("schema")?.as_str()? == SCHEMA_TAG).then_some(())?;
    let seq = value.get("seq")?.as_i64()?;
    Some(Payload {
        seq,
        derived: value
            .get("derived")
            .and_then(|d| d.as_i64())
            .map_or(seq, |d| d.min(seq)),
        file: value
            .get("file")
            .and_then(|f| f.as_str())
            .map(str::to_owned),
    })
}

/// The `seq` an index with `payload` resumes from (0 without one).
pub(super) fn resume(payload: Option<&Payload>) -> i64 {
    payload.map_or(0, |p| p.seq)
}

/// Whether an index whose last commit recorded `payload` belongs to the file with id
/// `file` whose change log ends at `last_seq` (read after the payload, so that another
/// process's commit in between cannot look like a position beyond the log).
pub(super) fn check(
    payload: Option<&Payload>,
    file: Option<&str>,
    last_seq: i64,
) -> Result<(), Damage> {
    let Some(payload) = payload else {
        return Ok(());
    };
    if let (Some(theirs), Some(ours)) = (payload.file.as_deref(), file)
        && theirs != ours
    {
        return Err(Damage::other_history(format!(
            "the index was built from another file (id {theirs}), not this one (id {ours})"
        )));
    }
    if payload.seq > last_seq {
        return Err(Damage::other_history(format!(
            "the index reflects change {}, but the file's log ends at {last_seq}: it was \
             built from another history of the file",
            payload.seq
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip_and_name_their_file() {
        let p = decode(&encode(42, 40, Some("ab12"))).unwrap();
        assert_eq!(
            p,
            Payload {
                seq: 42,
                derived: 40,
                file: Some("ab12".into())
            }
        );
        assert_eq!(decode(&encode(7, 7, None)).unwrap().file, None);
        // A payload of the versions that wrote derived rows before the commit.
        let old = format!(r#"{{"schema":"{SCHEMA_TAG}","seq":9,"file":null}}"#);
        assert_eq!(decode(&old).unwrap().derived, 9);
        assert_eq!(decode(r#"{"schema":"cairn-index-v1","seq":3}"#), None);
        assert_eq!(decode("garbage"), None);
    }

    #[test]
    fn another_file_or_a_longer_history_is_damage() {
        let ours = Payload {
            seq: 10,
            derived: 10,
            file: Some("a".into()),
        };
        assert!(check(Some(&ours), Some("a"), 10).is_ok());
        assert!(check(Some(&ours), Some("b"), 10).is_err());
        assert!(check(Some(&ours), Some("a"), 9).is_err());
        // An index from before file ids is adopted.
        let old = Payload {
            seq: 5,
            derived: 5,
            file: None,
        };
        assert!(check(Some(&old), Some("a"), 5).is_ok());
        assert!(check(None, Some("a"), 0).is_ok());
    }
}
