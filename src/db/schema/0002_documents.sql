-- cairn schema version 2: documents split into retrievable chunks, and the entities
-- each chunk mentions. Relations and observations may name the chunk they were
-- extracted from, so a retrieval hit on a fact leads back to its text.

CREATE TABLE document (
    id         INTEGER PRIMARY KEY,
    source     TEXT,
    metadata   TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
    chars      INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    episode_id INTEGER REFERENCES episode(id) ON DELETE SET NULL
);

-- `start` / `end` are character (Unicode scalar) offsets into the document text.
CREATE TABLE chunk (
    id          INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL REFERENCES document(id) ON DELETE CASCADE,
    ord         INTEGER NOT NULL,
    text        TEXT NOT NULL,
    start       INTEGER NOT NULL,
    end         INTEGER NOT NULL,
    metadata    TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
    created_at  INTEGER NOT NULL,
    episode_id  INTEGER REFERENCES episode(id) ON DELETE SET NULL,
    UNIQUE (document_id, ord)
);

CREATE TABLE mention (
    chunk_id  INTEGER NOT NULL REFERENCES chunk(id) ON DELETE CASCADE,
    entity_id INTEGER NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    PRIMARY KEY (chunk_id, entity_id)
) WITHOUT ROWID;
CREATE INDEX mention_by_entity ON mention(entity_id);

ALTER TABLE relation ADD COLUMN chunk_id INTEGER REFERENCES chunk(id) ON DELETE SET NULL;
ALTER TABLE observation ADD COLUMN chunk_id INTEGER REFERENCES chunk(id) ON DELETE SET NULL;
