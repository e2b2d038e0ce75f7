-- Leads captured from conversations, and escalation bookkeeping on conversations.
CREATE TABLE leads (
    id            VARCHAR PRIMARY KEY,
    org_id        VARCHAR NOT NULL,
    chatbot_id    VARCHAR NOT NULL,
    name          VARCHAR,
    email         VARCHAR,                 -- lower-cased; the first dedup key
    phone         VARCHAR,                 -- digits with a leading + when given; the second
    company       VARCHAR,
    created_at    TIMESTAMP NOT NULL,
    updated_at    TIMESTAMP NOT NULL
);
CREATE INDEX leads_bot ON leads (chatbot_id, created_at);

CREATE TABLE lead_conversations (
    lead_id          VARCHAR NOT NULL,
    conversation_id  VARCHAR NOT NULL,
    chatbot_id       VARCHAR NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    PRIMARY KEY (lead_id, conversation_id)
);

ALTER TABLE conversations ADD COLUMN lead_id VARCHAR;
ALTER TABLE conversations ADD COLUMN lead_asked BOOLEAN DEFAULT false;
