-- Dashboard sign-in sessions and publishable (widget) keys.
-- A session stores only the SHA-256 of its token (the cookie value); the CSRF token is
-- derived from the token, so neither can be recovered from the database.
CREATE TABLE dashboard_sessions (
    id            VARCHAR PRIMARY KEY,
    token_hash    VARCHAR NOT NULL UNIQUE,
    key_id        VARCHAR NOT NULL,
    org_id        VARCHAR NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    last_seen_at  TIMESTAMP NOT NULL,
    expires_at    TIMESTAMP NOT NULL
);
CREATE INDEX dashboard_sessions_key ON dashboard_sessions (key_id);

-- hf_pub_ keys: one chatbot, a list of allowed origins (JSON array of scheme://host[:port]).
CREATE TABLE publishable_keys (
    id               VARCHAR PRIMARY KEY,
    org_id           VARCHAR NOT NULL,
    chatbot_id       VARCHAR NOT NULL,
    name             VARCHAR,
    prefix           VARCHAR NOT NULL,
    key_hash         VARCHAR NOT NULL UNIQUE,
    allowed_origins  JSON NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    revoked_at       TIMESTAMP
);
CREATE INDEX publishable_keys_bot ON publishable_keys (chatbot_id, created_at);

-- The publishable key whose widget started a conversation (NULL: started with an API key).
ALTER TABLE conversations ADD COLUMN publishable_key_id VARCHAR;
