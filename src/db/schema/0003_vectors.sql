-- cairn schema version 3: embedding vectors, derived from the text of entities,
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
