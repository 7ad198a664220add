-- imgpipe catalog, schema version 19 (PostgreSQL): where a host runs.
-- region is the site or region an on-prem agent is configured with, or the
-- location the Azure pull found for a VM ('' when unknown). It is one more
-- column of the groups fleet_counts keeps and the hosts_groups index
-- orders, so a region filter is read like the others: counts from a few
-- rows, a page as index ranges in name order.

ALTER TABLE hosts ADD COLUMN region TEXT NOT NULL DEFAULT '';
UPDATE hosts SET region = COALESCE(drift_summary::jsonb ->> 'location', '') WHERE source = 'azure' AND drift_summary LIKE '{%';

DROP TRIGGER hosts_count_insert_delete ON hosts;
DROP TRIGGER hosts_count_update ON hosts;
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

CREATE OR REPLACE FUNCTION fleet_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF TG_OP <> 'INSERT' THEN UPDATE fleet_counts SET n = n - 1 WHERE image = OLD.image AND version = OLD.version AND drifted = OLD.drifted AND failed = OLD.failed AND source = OLD.source AND platform = OLD.platform AND region = OLD.region; END IF; IF TG_OP <> 'DELETE' THEN INSERT INTO fleet_counts (image, version, drifted, failed, source, platform, region, n) VALUES (NEW.image, NEW.version, NEW.drifted, NEW.failed, NEW.source, NEW.platform, NEW.region, 1) ON CONFLICT (image, version, drifted, failed, source, platform, region) DO UPDATE SET n = fleet_counts.n + 1; END IF; RETURN NULL; END $$;
CREATE TRIGGER hosts_count_insert_delete AFTER INSERT OR DELETE ON hosts FOR EACH ROW EXECUTE FUNCTION fleet_count();
CREATE TRIGGER hosts_count_update AFTER UPDATE ON hosts FOR EACH ROW WHEN (OLD.image IS DISTINCT FROM NEW.image OR OLD.version IS DISTINCT FROM NEW.version OR OLD.drifted IS DISTINCT FROM NEW.drifted OR OLD.failed IS DISTINCT FROM NEW.failed OR OLD.source IS DISTINCT FROM NEW.source OR OLD.platform IS DISTINCT FROM NEW.platform OR OLD.region IS DISTINCT FROM NEW.region) EXECUTE FUNCTION fleet_count();

DROP INDEX hosts_groups;
CREATE INDEX hosts_groups ON hosts(image, version, drifted, failed, source, platform, region, name);
