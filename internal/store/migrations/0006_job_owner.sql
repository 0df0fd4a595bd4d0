-- 0006: which process runs a queued or running investigation. A server
-- sharing the store with others resumes only the jobs that are its own,
-- that no one owns (rows from before this migration), or whose owner has
-- not updated them for a while (it stopped); the claim is one conditional
-- UPDATE, so two servers cannot both take a job.

ALTER TABLE investigations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
