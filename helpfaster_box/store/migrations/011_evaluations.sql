-- Golden questions: a chatbot's saved set of questions with the facts a good reply holds
-- (or that must be declined), and evaluation runs of such a set through the chat pipeline.
-- No primary key on golden_questions: the set is rewritten in place (DuckDB checks a
-- re-inserted key against the deleted row of the same transaction).
CREATE TABLE golden_questions (
    id            VARCHAR NOT NULL,      -- gq_...
    org_id        VARCHAR NOT NULL,
    chatbot_id    VARCHAR NOT NULL,
    position      INTEGER NOT NULL,      -- order in the set as it was saved
    question      VARCHAR NOT NULL,
    expected      JSON NOT NULL,         -- ["30 days", "/refund(ed)?/"]: every one must be in the reply
    must_decline  BOOLEAN NOT NULL,      -- the documents cannot answer it: the bot must decline
    created_at    TIMESTAMP NOT NULL
);
CREATE INDEX golden_questions_bot ON golden_questions (chatbot_id);

CREATE TABLE evaluation_runs (
    id               VARCHAR PRIMARY KEY, -- eval_...
    org_id           VARCHAR NOT NULL,
    chatbot_id       VARCHAR NOT NULL,
    status           VARCHAR NOT NULL,    -- queued | running | done | failed
    triggered_by     VARCHAR NOT NULL,    -- request | source (an upload with evaluate: true)
    source_ids       JSON NOT NULL,       -- the uploads whose ingestion queued it
    cases            JSON NOT NULL,       -- the cases as run: [{question, expected, mustDecline}]
    completed        INTEGER NOT NULL,    -- cases answered so far
    results          JSON,                -- per case, when done
    totals           JSON,
    regressions      JSON,                -- what passed in the previous run and does not now
    previous_run_id  VARCHAR,
    error            VARCHAR,
    created_at       TIMESTAMP NOT NULL,
    started_at       TIMESTAMP,
    finished_at      TIMESTAMP
);
CREATE INDEX evaluation_runs_bot ON evaluation_runs (chatbot_id);

-- A source uploaded with "evaluate": true re-runs the saved set once it is ingested.
ALTER TABLE sources ADD COLUMN evaluate BOOLEAN DEFAULT false;
