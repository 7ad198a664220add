-- imgpipe catalog, schema version 13: credentials of the people and
-- programs that read the fleet server (imgpipe serve). A bearer token is
-- made for automation (imgpipe serve token create); a session is made when
-- a person signs in with OpenID Connect and lives in their browser's
-- cookie. Only the secret's SHA-256 is stored. Replicas on one database
-- share them, so a token revoked or a session ended on one is refused by
-- every replica.

CREATE TABLE access_tokens (
    id            {{ID}},
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    subject       TEXT NOT NULL DEFAULT '',
    token_sha256  TEXT NOT NULL UNIQUE,
    created_by    TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    expires_at    TEXT NOT NULL DEFAULT '',
    revoked_at    TEXT NOT NULL DEFAULT '',
    last_used_at  TEXT NOT NULL DEFAULT ''
);
-- one live bearer token per name (a revoked name can be reused)
CREATE UNIQUE INDEX access_tokens_live_name ON access_tokens(name) WHERE kind = 'bearer' AND revoked_at = '';
CREATE INDEX access_tokens_expiry ON access_tokens(kind, expires_at);
