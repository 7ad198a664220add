-- imgpipe catalog, schema version 12 (SQLite): the fleet at scale.
--
-- fleet_counts holds how many hosts share each combination of the columns
-- a host's state depends on, kept by triggers on every write to hosts, so
-- a summary reads a few rows instead of the fleet. host_reports keeps each
-- host's history (a row when its state changes, else at most one an hour;
-- bounded in age and per host); fleet_snapshots keeps fleet_counts at
-- fixed instants, for charts. leases schedule work once across replicas.

ALTER TABLE hosts ADD COLUMN drifted_since TEXT NOT NULL DEFAULT '';
ALTER TABLE hosts ADD COLUMN history_at TEXT NOT NULL DEFAULT '';

CREATE TABLE fleet_counts (
    image     TEXT NOT NULL,
    version   TEXT NOT NULL,
    drifted   INTEGER NOT NULL,
    failed    INTEGER NOT NULL,
    source    TEXT NOT NULL,
    platform  TEXT NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (image, version, drifted, failed, source, platform)
);
INSERT INTO fleet_counts (image, version, drifted, failed, source, platform, n)
    SELECT image, version, drifted, failed, source, platform, COUNT(*) FROM hosts GROUP BY image, version, drifted, failed, source, platform;

CREATE TRIGGER hosts_count_insert AFTER INSERT ON hosts BEGIN INSERT INTO fleet_counts (image, version, drifted, failed, source, platform, n) VALUES (NEW.image, NEW.version, NEW.drifted, NEW.failed, NEW.source, NEW.platform, 1) ON CONFLICT (image, version, drifted, failed, source, platform) DO UPDATE SET n = fleet_counts.n + 1; END;
CREATE TRIGGER hosts_count_delete AFTER DELETE ON hosts BEGIN UPDATE fleet_counts SET n = n - 1 WHERE image = OLD.image AND version = OLD.version AND drifted = OLD.drifted AND failed = OLD.failed AND source = OLD.source AND platform = OLD.platform; END;
CREATE TRIGGER hosts_count_update AFTER UPDATE OF image, version, drifted, failed, source, platform ON hosts WHEN OLD.image IS NOT NEW.image OR OLD.version IS NOT NEW.version OR OLD.drifted IS NOT NEW.drifted OR OLD.failed IS NOT NEW.failed OR OLD.source IS NOT NEW.source OR OLD.platform IS NOT NEW.platform BEGIN UPDATE fleet_counts SET n = n - 1 WHERE image = OLD.image AND version = OLD.version AND drifted = OLD.drifted AND failed = OLD.failed AND source = OLD.source AND platform = OLD.platform; INSERT INTO fleet_counts (image, version, drifted, failed, source, platform, n) VALUES (NEW.image, NEW.version, NEW.drifted, NEW.failed, NEW.source, NEW.platform, 1) ON CONFLICT (image, version, drifted, failed, source, platform) DO UPDATE SET n = fleet_counts.n + 1; END;

CREATE TABLE host_reports (
    id        INTEGER PRIMARY KEY,
    host      TEXT NOT NULL,
    at        TEXT NOT NULL,
    platform  TEXT NOT NULL,
    image     TEXT NOT NULL,
    version   TEXT NOT NULL,
    drifted   INTEGER NOT NULL,
    failed    INTEGER NOT NULL,
    source    TEXT NOT NULL
);
CREATE INDEX host_reports_host ON host_reports(host, at);
CREATE INDEX host_reports_at ON host_reports(at);

CREATE TABLE fleet_snapshots (
    at        TEXT NOT NULL,
    image     TEXT NOT NULL,
    version   TEXT NOT NULL,
    drifted   INTEGER NOT NULL,
    failed    INTEGER NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (at, image, version, drifted, failed)
);

CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    done_at     TEXT NOT NULL DEFAULT ''
);
