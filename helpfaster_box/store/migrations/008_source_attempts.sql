-- How many times ingestion started on a source. A document that crashes or stalls the
-- ingestion (or the whole process: kill -9, OOM) is retried at the next start only until
-- ingest_max_attempts, then ends `failed` instead of being picked up forever.
ALTER TABLE sources ADD COLUMN IF NOT EXISTS attempts INTEGER DEFAULT 0;
