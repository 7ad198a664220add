-- imgpipe catalog, schema version 11: the reconciler's rounds inside
-- imgpipe serve. Replicas sharing the catalog take turns: the replica that
-- claims a round (next_at passed) evaluates the rebuild policies, the others
-- skip until next_at.

CREATE TABLE reconcile_rounds (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    next_at  TEXT NOT NULL
);
