-- 0003: how many events an investigation read per minute of event time,
-- for the timeline of the investigation page. minute is the start of the
-- minute in nanoseconds since the Unix epoch (UTC); events without a usable
-- timestamp are counted under minute 0.

CREATE TABLE event_volume (
    investigation_id TEXT NOT NULL REFERENCES investigations (id) ON DELETE CASCADE,
    minute  BIGINT NOT NULL,
    events  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (investigation_id, minute)
);
