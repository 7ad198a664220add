-- imgpipe catalog: the supply-chain documents of a version (its SBOM, its
-- signed provenance, its signed test and promotion attestations) and the
-- public keys whose signatures this catalog trusts.

CREATE TABLE version_documents (
    id          {{ID}},
    version_id  BIGINT NOT NULL REFERENCES versions(id),
    kind        TEXT NOT NULL,
    media_type  TEXT NOT NULL,
    key_id      TEXT NOT NULL DEFAULT '',
    data        {{BLOB}} NOT NULL,
    sha256      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX version_documents_version ON version_documents(version_id, kind);

CREATE TABLE trusted_keys (
    key_id      TEXT PRIMARY KEY,
    public_pem  TEXT NOT NULL,
    added_by    TEXT NOT NULL DEFAULT '',
    added_at    TEXT NOT NULL
);
