//! What each index commit records (its tantivy commit payload): the schema it was built
//! with and the last change-log `seq` it applied.

use crate::index::schema::SCHEMA_TAG;

/// The payload of a commit that applied every change up to `seq`.
pub(super) fn encode(seq: i64) -> String {
    serde_json::json!({ "schema": SCHEMA_TAG, "seq": seq }).to_string()
}

/// The `seq` a payload records; `None` when it is not one of this schema's.
pub(super) fn decode(text: &str) -> Option<i64> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    (value.get("schema")?.as_str()? == SCHEMA_TAG).then_some(())?;
    value.get("seq")?.as_i64()
}
