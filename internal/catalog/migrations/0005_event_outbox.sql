-- imgpipe catalog: the event outbox. Every event imgpipe emits (build,
-- publish, test, promotion, revocation, rollout step, drift) is written here
-- in the same catalog as the change it reports, with one delivery row per
-- webhook, so a crash or restart loses none; deliverers claim rows with a
-- lease, so replicas never send one twice at once.

CREATE TABLE webhooks (
    name         TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    secret_file  TEXT NOT NULL DEFAULT '',
    types        TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL
);

CREATE TABLE event_outbox (
    id          {{ID}},
    event_id    TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    body        {{BLOB}} NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE event_deliveries (
    outbox_id        BIGINT NOT NULL REFERENCES event_outbox(id),
    webhook          TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    claimed_until    TEXT NOT NULL DEFAULT '',
    delivered_at     TEXT NOT NULL DEFAULT '',
    last_error       TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (outbox_id, webhook)
);
CREATE INDEX event_deliveries_due ON event_deliveries(delivered_at, next_attempt_at);
