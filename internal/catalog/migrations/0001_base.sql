-- imgpipe catalog, schema version 1: images, versions with provenance,
-- lineage copies, channels and promotions, revocations, runs and steps, and
-- the per-image lock table.
--
-- Portable SQL for SQLite and PostgreSQL. Two macros are replaced per dialect:
-- {{ID}} (an auto-assigned 64-bit primary key) and {{BLOB}} (binary data).
-- Times are TEXT in UTC, fixed width (2006-01-02T15:04:05.000000Z), so they
-- sort as strings on both engines. Booleans are INTEGER 0/1.

CREATE TABLE images (
    id          {{ID}},
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE versions (
    id                 {{ID}},
    image_id           BIGINT NOT NULL REFERENCES images(id),
    version            TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'active',
    git_commit         TEXT NOT NULL DEFAULT '',
    template_hash      TEXT NOT NULL DEFAULT '',
    packer_version     TEXT NOT NULL DEFAULT '',
    build_id           TEXT NOT NULL DEFAULT '',
    build_time         TEXT NOT NULL DEFAULT '',
    artifact_sha256    TEXT NOT NULL DEFAULT '',
    hyperv_generation  TEXT NOT NULL DEFAULT '',
    os_type            TEXT NOT NULL DEFAULT '',
    parent_version_id  BIGINT REFERENCES versions(id),
    created_at         TEXT NOT NULL,
    UNIQUE (image_id, version)
);
CREATE INDEX versions_parent ON versions(parent_version_id);

CREATE TABLE version_tags (
    version_id  BIGINT NOT NULL REFERENCES versions(id),
    key         TEXT NOT NULL,
    value       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (version_id, key)
);

CREATE TABLE copies (
    id              {{ID}},
    version_id      BIGINT NOT NULL REFERENCES versions(id),
    kind            TEXT NOT NULL,
    location        TEXT NOT NULL DEFAULT '',
    resource_id     TEXT NOT NULL,
    fingerprint     TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL DEFAULT '',
    parent_copy_id  BIGINT REFERENCES copies(id),
    detail          TEXT NOT NULL DEFAULT '',
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    UNIQUE (version_id, kind, resource_id)
);
CREATE INDEX copies_parent ON copies(parent_copy_id);
CREATE INDEX copies_resource ON copies(resource_id);

CREATE TABLE channels (
    id          {{ID}},
    image_id    BIGINT NOT NULL REFERENCES images(id),
    name        TEXT NOT NULL,
    version_id  BIGINT REFERENCES versions(id),
    updated_at  TEXT NOT NULL,
    UNIQUE (image_id, name)
);

CREATE TABLE promotions (
    id               {{ID}},
    channel_id       BIGINT NOT NULL REFERENCES channels(id),
    from_version_id  BIGINT REFERENCES versions(id),
    to_version_id    BIGINT NOT NULL REFERENCES versions(id),
    promoted_by      TEXT NOT NULL,
    promoted_at      TEXT NOT NULL
);

CREATE TABLE revocations (
    id                 {{ID}},
    version_id         BIGINT NOT NULL UNIQUE REFERENCES versions(id),
    reason             TEXT NOT NULL,
    revoked_by         TEXT NOT NULL,
    revoked_at         TEXT NOT NULL,
    cascade_requested  INTEGER NOT NULL DEFAULT 0,
    cause_version_id   BIGINT REFERENCES versions(id)
);

CREATE TABLE runs (
    id          {{ID}},
    kind        TEXT NOT NULL,
    image       TEXT NOT NULL DEFAULT '',
    version     TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL,
    started_by  TEXT NOT NULL DEFAULT '',
    started_at  TEXT NOT NULL,
    ended_at    TEXT NOT NULL DEFAULT '',
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX runs_image ON runs(image, started_at);

CREATE TABLE run_steps (
    id            {{ID}},
    run_id        BIGINT NOT NULL REFERENCES runs(id),
    seq           INTEGER NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL,
    detail        TEXT NOT NULL DEFAULT '',
    resource_ids  TEXT NOT NULL DEFAULT '[]',
    started_at    TEXT NOT NULL,
    ended_at      TEXT NOT NULL DEFAULT '',
    UNIQUE (run_id, seq)
);

CREATE TABLE image_locks (
    image        TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    acquired_at  TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
