-- imgpipe catalog, schema version 4: per-host agent credentials. An agent
-- enrols once with the fleet token and receives a credential bound to its
-- host name; only the credential's SHA-256 is stored. Reports are accepted
-- only for the host the credential was issued to.

CREATE TABLE host_credentials (
    host          TEXT PRIMARY KEY,
    token_sha256  TEXT NOT NULL UNIQUE,
    created_at    TEXT NOT NULL
);
