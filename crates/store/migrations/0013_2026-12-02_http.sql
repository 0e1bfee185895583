-- The HTTP engine and the hybrid engine (issue #18).
-- runs.endpoint: JSON {"format":1,"url" (never with credentials),"api","model","streaming",
-- "token_counts" ('usage' | 'vocabulary'),"usage_tokens","content_chunks","server" (what
-- /v1/models and /props said),"device_profile"} for a run on a remote server; for a hybrid
-- run {"format":1,"hybrid":true,"url","server","route":{"priority","model","price"},
-- "price":{"name","usd_per_million","source"},"ttft_budget_ms","device_refusal"}.
ALTER TABLE runs ADD COLUMN endpoint TEXT;
-- Where a hybrid request was answered ('on_device' | 'cloud' | 'unanswered'; NULL for other
-- engines), why it left the device, its cost, and the error of a request nobody answered.
ALTER TABLE requests ADD COLUMN source TEXT;
ALTER TABLE requests ADD COLUMN fallback_reason TEXT;
ALTER TABLE requests ADD COLUMN fallback_ns INTEGER;
ALTER TABLE requests ADD COLUMN cost_usd REAL;
ALTER TABLE requests ADD COLUMN error TEXT;
