//! Typed row ids, so an entity id can never be passed where a relation id is expected.

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

macro_rules! row_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(i64);

        impl $name {
            /// The raw SQLite rowid.
            pub fn get(self) -> i64 {
                self.0
            }

            /// Wraps a raw rowid (for ids read back from JSON or the command line).
            pub fn from_raw(raw: i64) -> Self {
                $name(raw)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl ToSql for $name {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                self.0.to_sql()
            }
        }

        impl FromSql for $name {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                i64::column_result(value).map($name)
            }
        }
    };
}

row_id!(
    /// Identifies an entity. Stable until the entity is deleted or merged into another.
    EntityId
);
row_id!(
    /// Identifies a relation (one subject–predicate→object triple).
    RelationId
);
row_id!(
    /// Identifies an observation.
    ObservationId
);
row_id!(
    /// Identifies an episode (the provenance of a group of writes).
    EpisodeId
);
row_id!(
    /// A position in the change log; strictly increasing.
    Seq
);
row_id!(
    /// Identifies a document.
    DocumentId
);
row_id!(
    /// Identifies a chunk (a retrievable piece of a document).
    ChunkId
);
