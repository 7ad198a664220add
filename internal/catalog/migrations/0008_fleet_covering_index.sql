-- imgpipe catalog, schema version 8: one covering index holding every
-- column a fleet count, state filter or severity sort reads, so those scan
-- a narrow index instead of the host rows with their drift summaries.

CREATE INDEX hosts_fleet ON hosts(image, version, drifted, failed, source, platform, last_report, name);
