-- 0005: findings by first time, for the timeline of the investigation
-- page: its range (MIN/MAX) becomes two index seeks, and the count per time
-- bucket and priority reads this narrow index alone.

CREATE INDEX findings_by_first_time ON findings (investigation_id, first_time, priority);
