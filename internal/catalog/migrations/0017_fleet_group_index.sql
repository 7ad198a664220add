-- imgpipe catalog, schema version 17: a page of one state is read group by
-- group (image, version, drift, failure, source, platform) in name order,
-- each group an index range that stops at the page's end, merged by name.
-- The counts come from fleet_counts (migration 12), so the covering index
-- with last_report (migration 8) and the (image, version) index (a prefix
-- of this one) go: each was one more index to change on every report.

CREATE INDEX hosts_groups ON hosts(image, version, drifted, failed, source, platform, name);
DROP INDEX hosts_fleet;
DROP INDEX hosts_image;
