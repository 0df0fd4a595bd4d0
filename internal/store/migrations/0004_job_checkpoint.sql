-- 0004: what a background job needs to come back after a crash. checkpoint
-- counts the source events fully processed whose findings are all
-- committed (it is written in the same transaction as those findings);
-- source_state is the job runner's fingerprint of its source, to tell on
-- restart whether the source still reads the same.

ALTER TABLE investigations ADD COLUMN checkpoint BIGINT NOT NULL DEFAULT 0;
ALTER TABLE investigations ADD COLUMN source_state TEXT NOT NULL DEFAULT '';

CREATE INDEX investigations_by_status ON investigations (status, created);
