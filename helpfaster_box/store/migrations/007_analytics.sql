-- Analytics: the vector of every visitor question (embedded once, in the chat turn, so
-- topic and gap refreshes never re-embed), human replies, closed conversations, stored
-- topic clusterings and knowledge gaps. No primary keys on tables that are rewritten in
-- place (topics, topic_members, topic_runs): DuckDB checks a re-inserted key against the
-- deleted row of the same transaction.
CREATE TABLE message_vectors (
    message_id  VARCHAR PRIMARY KEY,     -- a visitor message (role user)
    chatbot_id  VARCHAR NOT NULL,
    embedding   FLOAT[] NOT NULL         -- the embedder's normalized vector of the message alone
);
CREATE INDEX message_vectors_bot ON message_vectors (chatbot_id);

ALTER TABLE messages ADD COLUMN author VARCHAR;              -- agent messages: who answered
ALTER TABLE conversations ADD COLUMN resolved_at TIMESTAMP;  -- status resolved since

-- The latest topic clustering of a chatbot: one run row, its topics, one member row per question.
CREATE TABLE topic_runs (
    chatbot_id   VARCHAR NOT NULL,
    computed_at  TIMESTAMP NOT NULL,
    questions    INTEGER NOT NULL,
    period_from  TIMESTAMP NOT NULL,
    period_to    TIMESTAMP NOT NULL
);

CREATE TABLE topics (
    id          VARCHAR NOT NULL,        -- top_...: kept across refreshes while the cluster stays
    chatbot_id  VARCHAR NOT NULL,
    label       VARCHAR NOT NULL,
    keywords    JSON NOT NULL,           -- ["invoice", "billing", ...], most distinctive first
    examples    JSON NOT NULL,           -- the questions closest to the centroid
    centroid    FLOAT[] NOT NULL,
    created_at  TIMESTAMP NOT NULL       -- when this id was first seen
);
CREATE INDEX topics_bot ON topics (chatbot_id);

CREATE TABLE topic_members (
    message_id  VARCHAR NOT NULL,
    chatbot_id  VARCHAR NOT NULL,
    topic_id    VARCHAR NOT NULL
);
CREATE INDEX topic_members_bot ON topic_members (chatbot_id);

-- Knowledge gaps: questions the bot declined, got a thumbs-down on, or that ended in an
-- escalation, grouped when nearly identical. Members are assigned once and never move.
CREATE TABLE gaps (
    id           VARCHAR PRIMARY KEY,    -- gap_...
    org_id       VARCHAR NOT NULL,
    chatbot_id   VARCHAR NOT NULL,
    question     VARCHAR NOT NULL,       -- the first question of the group
    embedding    FLOAT[],                -- its vector; NULL groups by exact text only
    status       VARCHAR NOT NULL,       -- open | resolved
    answer       VARCHAR,                -- the answer made knowledge when resolved
    source_id    VARCHAR,                -- the Q&A source it became
    resolved_at  TIMESTAMP,
    created_at   TIMESTAMP NOT NULL
);
CREATE INDEX gaps_bot ON gaps (chatbot_id);

CREATE TABLE gap_members (
    message_id  VARCHAR NOT NULL,        -- the visitor question
    chatbot_id  VARCHAR NOT NULL,
    gap_id      VARCHAR NOT NULL,
    reason      VARCHAR NOT NULL         -- declined | thumbs_down | escalated
);
CREATE INDEX gap_members_bot ON gap_members (chatbot_id);
