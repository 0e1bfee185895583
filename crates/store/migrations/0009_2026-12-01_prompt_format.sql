-- How the run's prompts reached the model: 'chat' (rendered through the model's GGUF chat
-- template) or 'raw' (the dataset text as it is). NULL for runs stored before it was recorded,
-- which were all raw.
ALTER TABLE runs ADD COLUMN prompt_format TEXT;
