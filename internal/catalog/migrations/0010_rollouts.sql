-- imgpipe catalog, schema version 10: rollouts of a version to what runs it
-- (imgpipe rollout): one row per rollout, one per member (a scale-set
-- instance) with the version it runs and its state.

CREATE TABLE rollouts (
    id          {{ID}},
    version_id  BIGINT NOT NULL REFERENCES versions(id),
    kind        TEXT NOT NULL,
    target      TEXT NOT NULL,
    state       TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rollouts_version ON rollouts(version_id, started_at);
CREATE INDEX rollouts_target ON rollouts(target, started_at);

CREATE TABLE rollout_members (
    rollout_id  BIGINT NOT NULL REFERENCES rollouts(id),
    member      TEXT NOT NULL,
    version     TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL,
    healthy     INTEGER NOT NULL DEFAULT 1,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (rollout_id, member)
);
