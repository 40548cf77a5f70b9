-- cairn schema version 1: the core memory graph.
-- Times are unix milliseconds (UTC). Every write row may point to its episode.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE episode (
    id         INTEGER PRIMARY KEY,
    agent      TEXT,
    source     TEXT,
    at         INTEGER NOT NULL,
    metadata   TEXT CHECK (metadata IS NULL OR json_valid(metadata)),
    created_at INTEGER NOT NULL
);
CREATE INDEX episode_by_agent ON episode(agent, at);

CREATE TABLE entity (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    kind       TEXT,
    summary    TEXT,
    embedding  BLOB,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    episode_id INTEGER REFERENCES episode(id) ON DELETE SET NULL
);

-- Every name an entity is reached by, including its own. `key` is the normalized name:
-- its PRIMARY KEY is what makes a name impossible to store twice, across threads and
-- processes alike.
CREATE TABLE alias (
    key        TEXT PRIMARY KEY,
    entity_id  INTEGER NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    episode_id INTEGER REFERENCES episode(id) ON DELETE SET NULL
) WITHOUT ROWID;
CREATE INDEX alias_by_entity ON alias(entity_id);

CREATE TABLE relation (
    id            INTEGER PRIMARY KEY,
    subject_id    INTEGER NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    predicate     TEXT NOT NULL,
    predicate_key TEXT NOT NULL,
    object_id     INTEGER NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    mentions      INTEGER NOT NULL DEFAULT 1,
    first_seen    INTEGER NOT NULL,
    last_seen     INTEGER NOT NULL,
    valid_from    INTEGER,
    valid_to      INTEGER,
    episode_id    INTEGER REFERENCES episode(id) ON DELETE SET NULL,
    UNIQUE (subject_id, predicate_key, object_id)
);
CREATE INDEX relation_by_object ON relation(object_id);

CREATE TABLE observation (
    id         INTEGER PRIMARY KEY,
    entity_id  INTEGER NOT NULL REFERENCES entity(id) ON DELETE CASCADE,
    text       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    episode_id INTEGER REFERENCES episode(id) ON DELETE SET NULL,
    UNIQUE (entity_id, text)
);

-- The change log: one row per mutation, written in the mutation's own transaction.
-- `seq` is the rowid: SQLite assigns max(seq) + 1, so it strictly increases as long as the
-- newest row is never deleted (cairn never deletes change rows; a future compaction must
-- keep the newest). Not AUTOINCREMENT: its sqlite_sequence page is one more WAL frame on
-- every commit (about 8 % of single-call write throughput, measured).
CREATE TABLE change (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    op         TEXT NOT NULL,
    target     INTEGER NOT NULL,
    detail     TEXT,
    episode_id INTEGER REFERENCES episode(id) ON DELETE SET NULL
);
CREATE INDEX change_by_episode ON change(episode_id) WHERE episode_id IS NOT NULL;
