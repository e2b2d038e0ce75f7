-- Issue 10: the grounding contract of a reply, and a vector per answer unit of a chunk.

-- assistant replies: how sure the bot is (0-1) and, when it declined, why
-- (no_knowledge | not_relevant | low_confidence).
ALTER TABLE messages ADD COLUMN confidence DOUBLE;
ALTER TABLE messages ADD COLUMN decline_reason VARCHAR;

-- The answer units of each chunk (knowledge/units.py), written in the same transaction as
-- the chunk, with two vectors of the unit's head (its first line):
-- embedding: read in the context of the passage, from the chunk's own forward pass at
--   ingestion (free); chat shortlists the units of a turn's passages with it;
-- alone: the head embedded on its own, filled the first time a turn shortlists the unit
--   (in that turn's write) and reused after: the final ranking uses it.
-- Rows of chunks ingested before this migration are missing; chat then embeds those
-- units on the fly (and `reindex --embed` fills them in).
CREATE TABLE chunk_sentences (
    chunk_id    BIGINT NOT NULL,
    chatbot_id  VARCHAR NOT NULL,
    source_id   VARCHAR NOT NULL,
    position    INTEGER NOT NULL,
    text        VARCHAR NOT NULL,
    embedding   FLOAT[] NOT NULL,
    alone       FLOAT[]
);
CREATE INDEX chunk_sentences_chunk ON chunk_sentences (chunk_id);
CREATE INDEX chunk_sentences_source ON chunk_sentences (source_id);
