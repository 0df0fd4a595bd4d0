-- 0001: investigations, their findings and the evidence each finding points at.
-- Written once for SQLite and PostgreSQL: JSON is TEXT, times are BIGINT
-- nanoseconds since the Unix epoch (UTC), 0 meaning "no time".

CREATE TABLE investigations (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    source     TEXT NOT NULL DEFAULT '{}',
    time_from  BIGINT NOT NULL DEFAULT 0,
    time_to    BIGINT NOT NULL DEFAULT 0,
    options    TEXT NOT NULL DEFAULT '{}',
    status     TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    error      TEXT NOT NULL DEFAULT '',
    events     BIGINT NOT NULL DEFAULT 0,
    findings   BIGINT NOT NULL DEFAULT 0,
    created    BIGINT NOT NULL,
    updated    BIGINT NOT NULL
);

CREATE INDEX investigations_by_created ON investigations (created DESC, id DESC);

CREATE TABLE findings (
    investigation_id TEXT NOT NULL REFERENCES investigations (id) ON DELETE CASCADE,
    id          TEXT NOT NULL,
    tactic      TEXT NOT NULL DEFAULT '',
    tactic_id   TEXT NOT NULL DEFAULT '',
    techniques  TEXT NOT NULL DEFAULT '[]',
    question    TEXT NOT NULL DEFAULT '',
    conclusion  TEXT NOT NULL DEFAULT '',
    priority    INTEGER NOT NULL,
    rule_id     TEXT NOT NULL DEFAULT '',
    rule_title  TEXT NOT NULL DEFAULT '',
    rule_author TEXT NOT NULL DEFAULT '',
    rule_link   TEXT NOT NULL DEFAULT '',
    rule_level  TEXT NOT NULL DEFAULT '',
    source      TEXT NOT NULL DEFAULT '',
    host        TEXT NOT NULL DEFAULT '',
    user_name   TEXT NOT NULL DEFAULT '',
    first_time  BIGINT NOT NULL DEFAULT 0,
    last_time   BIGINT NOT NULL DEFAULT 0,
    event_count BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (investigation_id, id)
);

-- The listing order: priority first, then time, then id for ties.
CREATE INDEX findings_by_order ON findings (investigation_id, priority DESC, first_time, id);

CREATE TABLE evidence (
    investigation_id TEXT NOT NULL,
    finding_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    record_id   TEXT NOT NULL DEFAULT '',
    index_name  TEXT NOT NULL DEFAULT '',
    line        BIGINT NOT NULL DEFAULT 0,
    event_time  BIGINT NOT NULL DEFAULT 0,
    host        TEXT NOT NULL DEFAULT '',
    user_name   TEXT NOT NULL DEFAULT '',
    summary     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (investigation_id, finding_id, seq),
    FOREIGN KEY (investigation_id, finding_id) REFERENCES findings (investigation_id, id) ON DELETE CASCADE
);
