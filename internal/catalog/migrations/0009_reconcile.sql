-- imgpipe catalog, schema version 9: the reconciler (imgpipe reconcile).
-- Every decision it takes for an image (rebuild, wait, stopped) is kept with
-- its reason, and a rebuild's outcome with the run that carried it out.
-- reconcile_drift keeps since when an image's drift threshold has held, as
-- the reconciler observed it, so "for = 2h" can be judged.

CREATE TABLE reconcile_decisions (
    id          {{ID}},
    image       TEXT NOT NULL,
    decision    TEXT NOT NULL,
    trig        TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL,
    at          TEXT NOT NULL,
    run_id      BIGINT NOT NULL DEFAULT 0,
    state       TEXT NOT NULL DEFAULT '',
    claimant    TEXT NOT NULL DEFAULT '',
    version     TEXT NOT NULL DEFAULT '',
    ended_at    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX reconcile_decisions_image ON reconcile_decisions(image, at);

CREATE TABLE reconcile_drift (
    image    TEXT NOT NULL,
    channel  TEXT NOT NULL,
    since    TEXT NOT NULL,
    PRIMARY KEY (image, channel)
);

-- one running rebuild per image: a second trigger during a run claims nothing
CREATE UNIQUE INDEX reconcile_one_running ON reconcile_decisions(image) WHERE state = 'running';
