-- imgpipe catalog, schema version 7: test runs of versions (imgpipe test).
-- A channel requirement of kind 'tested' (channel_requirements) then asks for
-- a passing test of the version's exact artifact digest.

CREATE TABLE test_runs (
    id               {{ID}},
    version_id       BIGINT NOT NULL REFERENCES versions(id),
    test             TEXT NOT NULL,
    runner           TEXT NOT NULL,
    artifact_digest  TEXT NOT NULL DEFAULT '',
    passed           INTEGER NOT NULL,
    started_at       TEXT NOT NULL,
    finished_at      TEXT NOT NULL,
    run_id           BIGINT,
    checks           TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX test_runs_version ON test_runs(version_id, finished_at);
