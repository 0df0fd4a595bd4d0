-- 0007: a language model's whole part in a finding, as the JSON of
-- finding.LLM: besides who wrote a model-written conclusion (provider,
-- model, prompt_version, kept for filtering), the note a model added to an
-- offline finding and, when its part is missing, why. NULL for a purely
-- offline run.

ALTER TABLE findings ADD COLUMN llm TEXT;
