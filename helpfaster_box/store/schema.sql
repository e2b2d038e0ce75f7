-- HelpFaster Box: the complete current schema, generated from store/migrations/
-- by `python -m helpfaster_box.store.schema`. Do not edit: add a migration instead.

CREATE SEQUENCE chunk_ids INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START 1 NO CYCLE;

CREATE TABLE api_keys(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, "name" VARCHAR, "role" VARCHAR NOT NULL, prefix VARCHAR NOT NULL, key_hash VARCHAR NOT NULL UNIQUE, created_at TIMESTAMP NOT NULL, revoked_at TIMESTAMP);
CREATE INDEX api_keys_org ON api_keys(org_id, created_at);

CREATE TABLE chatbots(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, "name" VARCHAR NOT NULL, instructions VARCHAR, welcome_message VARCHAR, fallback_message VARCHAR, answer_mode VARCHAR NOT NULL, temperature DOUBLE NOT NULL, max_tokens INTEGER NOT NULL, lead_capture JSON NOT NULL, escalation JSON NOT NULL, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE INDEX chatbots_org ON chatbots(org_id, created_at);

CREATE TABLE chunk_sentences(chunk_id BIGINT NOT NULL, chatbot_id VARCHAR NOT NULL, source_id VARCHAR NOT NULL, "position" INTEGER NOT NULL, "text" VARCHAR NOT NULL, embedding FLOAT[] NOT NULL, alone FLOAT[]);
CREATE INDEX chunk_sentences_chunk ON chunk_sentences(chunk_id);
CREATE INDEX chunk_sentences_source ON chunk_sentences(source_id);

CREATE TABLE chunks(id BIGINT DEFAULT(nextval('chunk_ids')) PRIMARY KEY, chatbot_id VARCHAR NOT NULL, source_id VARCHAR NOT NULL, "position" INTEGER NOT NULL, title VARCHAR, section VARCHAR, url VARCHAR, "text" VARCHAR NOT NULL, embedding FLOAT[] NOT NULL);
CREATE INDEX chunks_bot ON chunks(chatbot_id);
CREATE INDEX chunks_source ON chunks(source_id);

CREATE TABLE conversations(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, status VARCHAR NOT NULL, visitor JSON, metadata JSON, message_count INTEGER DEFAULT(0) NOT NULL, unanswered_streak INTEGER DEFAULT(0) NOT NULL, escalated_at TIMESTAMP, escalation_reason VARCHAR, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL, lead_id VARCHAR, lead_asked BOOLEAN DEFAULT(false), resolved_at TIMESTAMP, publishable_key_id VARCHAR);
CREATE INDEX conversations_bot ON conversations(chatbot_id, created_at);

CREATE TABLE dashboard_sessions(id VARCHAR PRIMARY KEY, token_hash VARCHAR NOT NULL UNIQUE, key_id VARCHAR NOT NULL, org_id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, last_seen_at TIMESTAMP NOT NULL, expires_at TIMESTAMP NOT NULL);
CREATE INDEX dashboard_sessions_key ON dashboard_sessions(key_id);

CREATE TABLE evaluation_runs(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, status VARCHAR NOT NULL, triggered_by VARCHAR NOT NULL, source_ids JSON NOT NULL, cases JSON NOT NULL, completed INTEGER NOT NULL, results JSON, totals JSON, regressions JSON, previous_run_id VARCHAR, "error" VARCHAR, created_at TIMESTAMP NOT NULL, started_at TIMESTAMP, finished_at TIMESTAMP);
CREATE INDEX evaluation_runs_bot ON evaluation_runs(chatbot_id);

CREATE TABLE gap_members(message_id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, gap_id VARCHAR NOT NULL, reason VARCHAR NOT NULL);
CREATE INDEX gap_members_bot ON gap_members(chatbot_id);

CREATE TABLE gaps(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, question VARCHAR NOT NULL, embedding FLOAT[], status VARCHAR NOT NULL, answer VARCHAR, source_id VARCHAR, resolved_at TIMESTAMP, created_at TIMESTAMP NOT NULL);
CREATE INDEX gaps_bot ON gaps(chatbot_id);

CREATE TABLE golden_questions(id VARCHAR NOT NULL, org_id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, "position" INTEGER NOT NULL, question VARCHAR NOT NULL, expected JSON NOT NULL, must_decline BOOLEAN NOT NULL, created_at TIMESTAMP NOT NULL);
CREATE INDEX golden_questions_bot ON golden_questions(chatbot_id);

CREATE TABLE lead_conversations(lead_id VARCHAR, conversation_id VARCHAR, chatbot_id VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL, PRIMARY KEY(lead_id, conversation_id));

CREATE TABLE leads(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, "name" VARCHAR, email VARCHAR, phone VARCHAR, company VARCHAR, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE INDEX leads_bot ON leads(chatbot_id, created_at);

CREATE TABLE message_vectors(message_id VARCHAR PRIMARY KEY, chatbot_id VARCHAR NOT NULL, embedding FLOAT[] NOT NULL);
CREATE INDEX message_vectors_bot ON message_vectors(chatbot_id);

CREATE TABLE messages(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, conversation_id VARCHAR NOT NULL, seq INTEGER NOT NULL, "role" VARCHAR NOT NULL, "content" VARCHAR NOT NULL, sources JSON, answered BOOLEAN, answer_mode VARCHAR, prompt_tokens INTEGER, completion_tokens INTEGER, latency_ms INTEGER, ttft_ms INTEGER, visitor JSON, metadata JSON, feedback_rating VARCHAR, feedback_comment VARCHAR, feedback_at TIMESTAMP, created_at TIMESTAMP NOT NULL, author VARCHAR, confidence DOUBLE, decline_reason VARCHAR);
CREATE INDEX messages_bot ON messages(chatbot_id, created_at);
CREATE INDEX messages_conversation ON messages(conversation_id, seq);

CREATE TABLE organizations(id VARCHAR PRIMARY KEY, "name" VARCHAR NOT NULL UNIQUE, plan VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL);

CREATE TABLE publishable_keys(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, "name" VARCHAR, prefix VARCHAR NOT NULL, key_hash VARCHAR NOT NULL UNIQUE, allowed_origins JSON NOT NULL, created_at TIMESTAMP NOT NULL, revoked_at TIMESTAMP);
CREATE INDEX publishable_keys_bot ON publishable_keys(chatbot_id, created_at);

CREATE TABLE schema_migrations("version" INTEGER PRIMARY KEY, "name" VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL);

CREATE TABLE sources(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, "type" VARCHAR NOT NULL, format VARCHAR, title VARCHAR, url VARCHAR, filename VARCHAR, content_type VARCHAR, size_bytes BIGINT NOT NULL, content_hash VARCHAR NOT NULL, status VARCHAR NOT NULL, "error" VARCHAR, chunk_count INTEGER DEFAULT(0) NOT NULL, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL, attempts INTEGER DEFAULT(0), evaluate BOOLEAN DEFAULT(false));
CREATE INDEX sources_bot ON sources(chatbot_id, created_at);
CREATE INDEX sources_status ON sources(status);

CREATE TABLE topic_members(message_id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, topic_id VARCHAR NOT NULL);
CREATE INDEX topic_members_bot ON topic_members(chatbot_id);

CREATE TABLE topic_runs(chatbot_id VARCHAR NOT NULL, computed_at TIMESTAMP NOT NULL, questions INTEGER NOT NULL, period_from TIMESTAMP NOT NULL, period_to TIMESTAMP NOT NULL);

CREATE TABLE topics(id VARCHAR NOT NULL, chatbot_id VARCHAR NOT NULL, "label" VARCHAR NOT NULL, keywords JSON NOT NULL, examples JSON NOT NULL, centroid FLOAT[] NOT NULL, created_at TIMESTAMP NOT NULL);
CREATE INDEX topics_bot ON topics(chatbot_id);

CREATE TABLE webhook_attempts(delivery_id VARCHAR NOT NULL, attempt INTEGER NOT NULL, attempted_at TIMESTAMP NOT NULL, status_code INTEGER, latency_ms INTEGER NOT NULL, "error" VARCHAR);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts(delivery_id);

CREATE TABLE webhook_deliveries(id VARCHAR PRIMARY KEY, webhook_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, status VARCHAR NOT NULL, attempts INTEGER DEFAULT(0) NOT NULL, next_attempt_at TIMESTAMP, last_status_code INTEGER, last_error VARCHAR, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries(webhook_id, created_at);

CREATE TABLE webhook_events(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, chatbot_id VARCHAR, "type" VARCHAR NOT NULL, payload JSON NOT NULL, created_at TIMESTAMP NOT NULL, fanned_out BOOLEAN DEFAULT(true));

CREATE TABLE webhooks(id VARCHAR PRIMARY KEY, org_id VARCHAR NOT NULL, url VARCHAR NOT NULL, description VARCHAR, events JSON NOT NULL, chatbot_ids JSON, "secret" VARCHAR NOT NULL, previous_secret VARCHAR, previous_secret_expires_at TIMESTAMP, enabled BOOLEAN NOT NULL, disabled_reason VARCHAR, disabled_at TIMESTAMP, failure_streak INTEGER DEFAULT(0) NOT NULL, last_success_at TIMESTAMP, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL);
CREATE INDEX webhooks_org ON webhooks(org_id, created_at);
