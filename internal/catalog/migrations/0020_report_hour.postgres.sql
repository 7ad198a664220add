-- imgpipe catalog, schema version 20 (PostgreSQL): the hour of a host's
-- last report is indexed instead of its exact time. Every report changed
-- the last_report index, so every report's update was a new version of the
-- row in every index of hosts; report_hour changes once an hour, so a
-- report that changes nothing else a host is indexed by is a HOT update
-- (the row's new version on the same page, no index touched), which the
-- free space fillfactor leaves on each page makes possible. Stale hosts
-- are found through report_hour (a range up to the cut-off's hour, then
-- last_report).

ALTER TABLE hosts ADD COLUMN report_hour TEXT NOT NULL DEFAULT '';
UPDATE hosts SET report_hour = substr(last_report, 1, 13);
CREATE INDEX hosts_report_hour ON hosts(report_hour);
DROP INDEX hosts_last_report;
ALTER TABLE hosts SET (fillfactor = 80);
