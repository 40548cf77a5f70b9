-- cairn schema version 3: covering indexes for graph expansion, and embedding vectors, derived from the text of entities,
-- relations, observations and chunks by the indexer when the memory has an embedder.
-- The embedder's id and dimension are recorded in `meta` (key 'embedder') by the first
-- open that configures one; every later open must configure the same.

CREATE TABLE vector (
    id     INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: a reader loads rows with id > its last
    kind   TEXT NOT NULL,            -- 'entity' | 'relation' | 'observation' | 'chunk'
    target INTEGER NOT NULL,         -- the row's id in its table
    data   BLOB NOT NULL,            -- little-endian f32 × dimension, L2-normalized
    UNIQUE (kind, target)
);

-- Graph expansion reads the most-mentioned relations of an entity, a few at a time. With
-- these, SQLite walks each list in order and stops after the fan-out, instead of
-- fetching and sorting every relation of a hub (7.5 ms → 0.012 ms for 3,000 relations).
CREATE INDEX relation_by_subject_mentions ON relation(subject_id, mentions DESC, id, object_id);
CREATE INDEX relation_by_object_mentions ON relation(object_id, mentions DESC, id, subject_id);
