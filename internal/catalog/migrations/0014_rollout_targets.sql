-- imgpipe catalog, schema version 14: rollouts driven by a policy
-- (internal/rollout): a rollout names the channel it follows, the version the
-- targets ran before (for rollback), the policy it was started with, and how
-- many steps it has recorded (each step is an event, named by this count).
-- Each target (a scale set, a standalone VM, the on-prem hosts of a channel)
-- has its own state; each member (instance, VM, host) names its target and
-- carries its plan (a replacement plan or script).

ALTER TABLE rollouts ADD COLUMN channel TEXT NOT NULL DEFAULT '';
ALTER TABLE rollouts ADD COLUMN previous TEXT NOT NULL DEFAULT '';
ALTER TABLE rollouts ADD COLUMN policy TEXT NOT NULL DEFAULT '';
ALTER TABLE rollouts ADD COLUMN steps INTEGER NOT NULL DEFAULT 0;
ALTER TABLE rollouts ADD COLUMN rollback_of BIGINT NOT NULL DEFAULT 0;

CREATE TABLE rollout_targets (
    rollout_id  BIGINT NOT NULL REFERENCES rollouts(id),
    target      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    mode        TEXT NOT NULL DEFAULT '',
    batch       INTEGER NOT NULL DEFAULT 0,
    next_at     TEXT NOT NULL DEFAULT '',
    upgrade_at  TEXT NOT NULL DEFAULT '',
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (rollout_id, target)
);

ALTER TABLE rollout_members ADD COLUMN target TEXT NOT NULL DEFAULT '';
ALTER TABLE rollout_members ADD COLUMN plan TEXT NOT NULL DEFAULT '';
