-- imgpipe catalog, schema version 6: fleet queries that scale. What the
-- dashboard filters and sorts on is kept in columns (not only inside the
-- drift summary's JSON), with indexes, so a page of the fleet, a count by
-- state or one host is a database query, not a load of the whole fleet.

ALTER TABLE hosts ADD COLUMN drifted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN source TEXT NOT NULL DEFAULT '';
UPDATE hosts SET drifted = 1 WHERE drift_summary LIKE '%"drifted":true%';
UPDATE hosts SET failed = 1 WHERE drift_summary LIKE '%"error":"%';
UPDATE hosts SET source = 'azure' WHERE drift_summary LIKE '%"source":"azure"%';
UPDATE hosts SET source = 'agent' WHERE drift_summary LIKE '%"source":"agent"%';
CREATE INDEX hosts_last_report ON hosts(last_report);
CREATE INDEX hosts_platform ON hosts(platform);
CREATE INDEX hosts_drifted ON hosts(drifted, name);
