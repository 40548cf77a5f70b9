-- cairn schema version 7: the chunks an entity's facts were extracted from, read without
-- visiting the facts that have none. The retriever's passage step asks, for each of up to
-- 32 entities per search, for the first chunk ids of its relations and observations. With
-- only the entity indexes, SQLite had to read every fact row of the entity to find the
-- few with a chunk (up to 256 rows per list, one table seek each: 0.6 ms for a hub of 204
-- facts, and a quarter of a searcher's CPU on the load bench's memory of 189k relations and
-- as many observations, docs/benchmarks.md). These partial, covering indexes hold only the
-- facts that have a chunk, in chunk order, so the step reads at most as many entries as
-- it keeps, whatever the entity's degree; facts without a chunk cost them nothing.
CREATE INDEX relation_chunk_by_subject ON relation(subject_id, chunk_id) WHERE chunk_id IS NOT NULL;
CREATE INDEX relation_chunk_by_object ON relation(object_id, chunk_id) WHERE chunk_id IS NOT NULL;
CREATE INDEX observation_chunk_by_entity ON observation(entity_id, chunk_id) WHERE chunk_id IS NOT NULL;
