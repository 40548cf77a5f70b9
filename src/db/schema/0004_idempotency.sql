-- cairn schema version 4: idempotent episodes.
--
-- An episode may carry a key chosen by its agent. `Memory::record` writes the episode and
-- its batch in one transaction and stores the batch's outcome with it, so repeating the
-- call after a commit whose outcome is unknown finds the key and returns that outcome
-- instead of writing again. Keys are scoped by agent.

ALTER TABLE episode ADD COLUMN idempotency_key TEXT;
ALTER TABLE episode ADD COLUMN outcome TEXT CHECK (outcome IS NULL OR json_valid(outcome));

CREATE UNIQUE INDEX episode_by_idempotency_key ON episode(agent, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
