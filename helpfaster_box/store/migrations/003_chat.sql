-- Chat: conversations and every message in them, with what analytics will need
-- (latency, token counts, answered flag, visitor info) and visitor feedback.
CREATE TABLE conversations (
    id                  VARCHAR PRIMARY KEY,
    org_id              VARCHAR NOT NULL,
    chatbot_id          VARCHAR NOT NULL,
    status              VARCHAR NOT NULL,        -- open | escalated
    visitor             JSON,
    metadata            JSON,
    message_count       INTEGER NOT NULL DEFAULT 0,
    unanswered_streak   INTEGER NOT NULL DEFAULT 0,
    escalated_at        TIMESTAMP,
    escalation_reason   VARCHAR,
    created_at          TIMESTAMP NOT NULL,
    updated_at          TIMESTAMP NOT NULL
);
CREATE INDEX conversations_bot ON conversations (chatbot_id, created_at);

CREATE TABLE messages (
    id                  VARCHAR PRIMARY KEY,
    org_id              VARCHAR NOT NULL,
    chatbot_id          VARCHAR NOT NULL,
    conversation_id     VARCHAR NOT NULL,
    seq                 INTEGER NOT NULL,        -- order inside the conversation
    role                VARCHAR NOT NULL,        -- user | assistant
    content             VARCHAR NOT NULL,
    sources             JSON,
    answered            BOOLEAN,                 -- assistant: false when it fell back
    answer_mode         VARCHAR,                 -- assistant: how the reply was composed
    prompt_tokens       INTEGER,
    completion_tokens   INTEGER,
    latency_ms          INTEGER,
    ttft_ms             INTEGER,
    visitor             JSON,
    metadata            JSON,
    feedback_rating     VARCHAR,
    feedback_comment    VARCHAR,
    feedback_at         TIMESTAMP,
    created_at          TIMESTAMP NOT NULL
);
CREATE INDEX messages_conversation ON messages (conversation_id, seq);
CREATE INDEX messages_bot ON messages (chatbot_id, created_at);
