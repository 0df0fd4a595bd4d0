-- 0002: who wrote a conclusion when a language model did (all NULL for
-- deterministic findings), and the indexes behind the listing filters.

ALTER TABLE findings ADD COLUMN provider TEXT;
ALTER TABLE findings ADD COLUMN model TEXT;
ALTER TABLE findings ADD COLUMN prompt_version TEXT;

CREATE INDEX findings_by_tactic ON findings (investigation_id, tactic, priority DESC, first_time, id);
CREATE INDEX findings_by_rule ON findings (investigation_id, rule_id, priority DESC, first_time, id);
CREATE INDEX findings_by_host ON findings (investigation_id, host, priority DESC, first_time, id);
CREATE INDEX findings_by_last_time ON findings (investigation_id, last_time);
