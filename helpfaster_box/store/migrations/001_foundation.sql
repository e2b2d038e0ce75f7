-- Organizations, API keys and chatbots: the foundation every feature stands on.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     INTEGER PRIMARY KEY,
    name        VARCHAR NOT NULL,
    applied_at  TIMESTAMP NOT NULL
);

CREATE TABLE organizations (
    id          VARCHAR PRIMARY KEY,
    name        VARCHAR NOT NULL UNIQUE,
    plan        VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL
);

CREATE TABLE api_keys (
    id           VARCHAR PRIMARY KEY,
    org_id       VARCHAR NOT NULL,
    name         VARCHAR,
    role         VARCHAR NOT NULL,
    prefix       VARCHAR NOT NULL,
    key_hash     VARCHAR NOT NULL UNIQUE,
    created_at   TIMESTAMP NOT NULL,
    revoked_at   TIMESTAMP
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

CREATE TABLE chatbots (
    id                VARCHAR PRIMARY KEY,
    org_id            VARCHAR NOT NULL,
    name              VARCHAR NOT NULL,
    instructions      VARCHAR,
    welcome_message   VARCHAR,
    fallback_message  VARCHAR,
    answer_mode       VARCHAR NOT NULL,
    temperature       DOUBLE NOT NULL,
    max_tokens        INTEGER NOT NULL,
    lead_capture      JSON NOT NULL,
    escalation        JSON NOT NULL,
    created_at        TIMESTAMP NOT NULL,
    updated_at        TIMESTAMP NOT NULL
);
CREATE INDEX chatbots_org ON chatbots (org_id, created_at);
