-- cairn schema version 7: the chunks an entity's facts were extracted from, found by
-- index alone. The retriever's passage step reads them for each of up to 32 entities per
-- search; through the entity indexes it fetched every relation's row to read its
-- `chunk_id` (a hub's 512 rows: over a millisecond, most of a search's graph step, while
-- the rows of facts without a source were read for nothing). Partial: a fact without a
-- source chunk costs these indexes nothing.
CREATE INDEX relation_source_by_subject ON relation(subject_id, chunk_id) WHERE chunk_id IS NOT NULL;
CREATE INDEX relation_source_by_object ON relation(object_id, chunk_id) WHERE chunk_id IS NOT NULL;
CREATE INDEX observation_source ON observation(entity_id, chunk_id) WHERE chunk_id IS NOT NULL;
