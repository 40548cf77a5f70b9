-- cairn schema version 6: name keys drop every default-ignorable character (direction
-- marks, variation selectors, Hangul fillers...) before NFKC, so keys written by earlier
-- versions may differ for names that contain them. The library recomputes them on the
-- first open that can write (`graph::entity::rekey_aliases`); this marks the files that
-- have aliases to recompute.
INSERT INTO meta(key, value) SELECT 'rekey_aliases', '1' WHERE EXISTS (SELECT 1 FROM alias);
