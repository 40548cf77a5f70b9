-- cairn schema version 5: what a document is about. A caller that knows a document's
-- subject (an encyclopedia article's title, a customer file's customer) says so; the
-- retriever's passage step goes from a passage naming that entity to this document.

ALTER TABLE document ADD COLUMN about_id INTEGER REFERENCES entity(id) ON DELETE SET NULL;
CREATE INDEX document_about ON document(about_id) WHERE about_id IS NOT NULL;
