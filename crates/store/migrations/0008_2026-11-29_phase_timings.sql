-- Per measured repetition, the harness's own timing of prefill and decode beside the engine's
-- counters for the same phases (llama.cpp: llama_perf_context), as a JSON array of objects
-- {harness_prefill_tokens, harness_prefill_ns, harness_decode_tokens, harness_decode_ns,
--  engine_prefill_tokens, engine_prefill_ms, engine_decode_tokens, engine_decode_ms}.
-- The report derives the harness overhead from it. NULL for engines without counters.
ALTER TABLE runs ADD COLUMN phase_timings TEXT;
