-- imgpipe catalog, schema version 19 (SQLite): where a host runs. region is
-- the site or region an on-prem agent is configured with, or the location
-- the Azure pull found for a VM ('' when unknown). It is one more column
-- of the groups fleet_counts keeps and the hosts_groups index orders, so a
-- region filter is read like the others: counts from a few rows, a page as
-- index ranges in name order.

ALTER TABLE hosts ADD COLUMN region TEXT NOT NULL DEFAULT '';
UPDATE hosts SET region = COALESCE(json_extract(drift_summary, '$.location'), '') WHERE source = 'azure' AND json_valid(drift_summary);

DROP TRIGGER hosts_count_insert;
DROP TRIGGER hosts_count_delete;
DROP TRIGGER hosts_count_update;
DROP TABLE fleet_counts;
CREATE TABLE fleet_counts (
    image     TEXT NOT NULL,
    version   TEXT NOT NULL,
    drifted   INTEGER NOT NULL,
    failed    INTEGER NOT NULL,
    source    TEXT NOT NULL,
    platform  TEXT NOT NULL,
    region    TEXT NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (image, version, drifted, failed, source, platform, region)
);
INSERT INTO fleet_counts (image, version, drifted, failed, source, platform, region, n)
    SELECT image, version, drifted, failed, source, platform, region, COUNT(*) FROM hosts GROUP BY image, version, drifted, failed, source, platform, region;

CREATE TRIGGER hosts_count_insert AFTER INSERT ON hosts BEGIN INSERT INTO fleet_counts (image, version, drifted, failed, source, platform, region, n) VALUES (NEW.image, NEW.version, NEW.drifted, NEW.failed, NEW.source, NEW.platform, NEW.region, 1) ON CONFLICT (image, version, drifted, failed, source, platform, region) DO UPDATE SET n = fleet_counts.n + 1; END;
CREATE TRIGGER hosts_count_delete AFTER DELETE ON hosts BEGIN UPDATE fleet_counts SET n = n - 1 WHERE image = OLD.image AND version = OLD.version AND drifted = OLD.drifted AND failed = OLD.failed AND source = OLD.source AND platform = OLD.platform AND region = OLD.region; END;
CREATE TRIGGER hosts_count_update AFTER UPDATE OF image, version, drifted, failed, source, platform, region ON hosts WHEN OLD.image IS NOT NEW.image OR OLD.version IS NOT NEW.version OR OLD.drifted IS NOT NEW.drifted OR OLD.failed IS NOT NEW.failed OR OLD.source IS NOT NEW.source OR OLD.platform IS NOT NEW.platform OR OLD.region IS NOT NEW.region BEGIN UPDATE fleet_counts SET n = n - 1 WHERE image = OLD.image AND version = OLD.version AND drifted = OLD.drifted AND failed = OLD.failed AND source = OLD.source AND platform = OLD.platform AND region = OLD.region; INSERT INTO fleet_counts (image, version, drifted, failed, source, platform, region, n) VALUES (NEW.image, NEW.version, NEW.drifted, NEW.failed, NEW.source, NEW.platform, NEW.region, 1) ON CONFLICT (image, version, drifted, failed, source, platform, region) DO UPDATE SET n = fleet_counts.n + 1; END;

DROP INDEX hosts_groups;
CREATE INDEX hosts_groups ON hosts(image, version, drifted, failed, source, platform, region, name);
