-- imgpipe catalog, schema version 2: what a channel needs before a version
-- may be promoted into it, retention staging on versions (deprecated, end of
-- life), and the fleet: hosts reporting the image they run and their drift,
-- and the drift baseline captured with each version.

ALTER TABLE versions ADD COLUMN deprecated_at TEXT NOT NULL DEFAULT '';
ALTER TABLE versions ADD COLUMN end_of_life TEXT NOT NULL DEFAULT '';

-- image '*' holds the defaults every image inherits unless it has its own
-- rows for that channel. state '' means any state except Failed or Deleted.
CREATE TABLE channel_requirements (
    image    TEXT NOT NULL,
    channel  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    state    TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (image, channel, kind)
);
INSERT INTO channel_requirements (image, channel, kind, state) VALUES ('*', 'test', 'onprem', '');
INSERT INTO channel_requirements (image, channel, kind, state) VALUES ('*', 'prod', 'gallery_version', 'Succeeded');

CREATE TABLE hosts (
    name           TEXT PRIMARY KEY,
    platform       TEXT NOT NULL,
    image          TEXT NOT NULL DEFAULT '',
    version        TEXT NOT NULL DEFAULT '',
    resource_id    TEXT NOT NULL DEFAULT '',
    last_report    TEXT NOT NULL,
    drift_summary  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX hosts_image ON hosts(image, version);

CREATE TABLE drift_baselines (
    version_id  BIGINT NOT NULL REFERENCES versions(id),
    format      TEXT NOT NULL,
    data        {{BLOB}} NOT NULL,
    sha256      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (version_id, format)
);
