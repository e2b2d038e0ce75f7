-- Knowledge: a chatbot's sources (documents, texts, Q&A, intranet pages) and their chunks.
CREATE TABLE sources (
    id            VARCHAR PRIMARY KEY,
    org_id        VARCHAR NOT NULL,
    chatbot_id    VARCHAR NOT NULL,
    type          VARCHAR NOT NULL,          -- file | text | qa | url
    format        VARCHAR,                   -- pdf | docx | html | md | txt, once detected
    title         VARCHAR,
    url           VARCHAR,
    filename      VARCHAR,
    content_type  VARCHAR,
    size_bytes    BIGINT NOT NULL,
    content_hash  VARCHAR NOT NULL,          -- sha256 of the original: re-uploads are not duplicated
    status        VARCHAR NOT NULL,          -- queued | processing | ready | failed
    error         VARCHAR,
    chunk_count   INTEGER NOT NULL DEFAULT 0,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
CREATE INDEX sources_bot ON sources (chatbot_id, created_at);
CREATE INDEX sources_status ON sources (status);

CREATE SEQUENCE chunk_ids START 1;
CREATE TABLE chunks (
    id          BIGINT PRIMARY KEY DEFAULT nextval('chunk_ids'),
    chatbot_id  VARCHAR NOT NULL,
    source_id   VARCHAR NOT NULL,
    position    INTEGER NOT NULL,
    title       VARCHAR,
    section     VARCHAR,
    url         VARCHAR,
    text        VARCHAR NOT NULL,
    embedding   FLOAT[] NOT NULL             -- kept so the indexes rebuild without re-embedding
);
CREATE INDEX chunks_bot ON chunks (chatbot_id);
CREATE INDEX chunks_source ON chunks (source_id);
