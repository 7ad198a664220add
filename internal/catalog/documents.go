package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"

	"fmt"
	"time"
)

// Document kinds. A version has at most one SBOM and one provenance (a new one
// replaces the old); test and promotion attestations accumulate.
const (
	DocSBOM       = "sbom"
	DocProvenance = "provenance"
	DocTest       = "test"
	DocPromotion  = "promotion"
)

func singleDoc(kind string) bool { return kind == DocSBOM || kind == DocProvenance }

// Document is one supply-chain document of a version.
type Document struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	MediaType string    `json:"media_type"`
	KeyID     string    `json:"key_id,omitempty"` // the key that signed it, if signed
	SHA256    string    `json:"sha256"`           // of Data
	Data      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// PutDocument stores a document of a version.
func (c *Catalog) PutDocument(ctx context.Context, ref Ref, d Document) (Document, error) {
	switch d.Kind {
	case DocSBOM, DocProvenance, DocTest, DocPromotion:
	default:
		return d, fmt.Errorf("%w: unknown document kind %q", ErrInvalid, d.Kind)
	}
	if d.MediaType == "" || len(d.Data) == 0 {
		return d, fmt.Errorf("%w: a document needs a media type and content", ErrInvalid)
	}
	sum := sha256.Sum256(d.Data)
	d.SHA256 = hex.EncodeToString(sum[:])
	d.CreatedAt = c.now().UTC()
	err := c.tx(ctx, func(tx *sql.Tx) error {
		id, err := c.versionID(ctx, tx, ref)
		if err != nil {
			return err
		}
		if singleDoc(d.Kind) {
			if _, err := tx.ExecContext(ctx, c.q("DELETE FROM version_documents WHERE version_id = ? AND kind = ?"), id, d.Kind); err != nil {
				return fmt.Errorf("replace %s of %s: %w", d.Kind, ref, err)
			}
		}
		err = tx.QueryRowContext(ctx, c.q(`INSERT INTO version_documents (version_id, kind, media_type, key_id, data, sha256, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), id, d.Kind, d.MediaType, d.KeyID, d.Data, d.SHA256, fmtTime(d.CreatedAt)).Scan(&d.ID)
		if err != nil {
			return fmt.Errorf("store %s of %s: %w", d.Kind, ref, err)
		}
		return nil
	})
	return d, err
}

// Documents returns the documents of a version of one kind (every kind when
// kind is empty), oldest first, each checked against its recorded SHA-256.
func (c *Catalog) Documents(ctx context.Context, ref Ref, kind string) ([]Document, error) {
	id, err := c.versionID(ctx, c.db, ref)
	if err != nil {
		return nil, err
	}
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT id, kind, media_type, key_id, data, sha256, created_at FROM version_documents
		WHERE version_id = ? AND (kind = ? OR ? = '') ORDER BY id`), id, kind, kind)
	if err != nil {
		return nil, fmt.Errorf("read documents of %s: %w", ref, err)
	}
	defer rows.Close()
	var out []Document
	for rows.Next() {
		var d Document
		var created string
		if err := rows.Scan(&d.ID, &d.Kind, &d.MediaType, &d.KeyID, &d.Data, &d.SHA256, &created); err != nil {
			return nil, err
		}
		if sum := sha256.Sum256(d.Data); hex.EncodeToString(sum[:]) != d.SHA256 {
			return nil, fmt.Errorf("the %s document %d of %s in the catalog is corrupt (SHA-256 mismatch): record it again", d.Kind, d.ID, ref)
		}
		d.CreatedAt = parseTime(created)
		out = append(out, d)
	}
	return out, rows.Err()
}

// Document returns the newest document of one kind of a version.
func (c *Catalog) Document(ctx context.Context, ref Ref, kind string) (Document, error) {
	docs, err := c.Documents(ctx, ref, kind)
	if err != nil {
		return Document{}, err
	}
	if len(docs) == 0 {
		return Document{}, fmt.Errorf("%w: %s has no %s document", ErrNotFound, ref, kind)
	}
	return docs[len(docs)-1], nil
}

// TrustedKey is a public key whose signatures the catalog's promotions require.
type TrustedKey struct {
	KeyID     string    `json:"key_id"`
	PublicPEM string    `json:"public_pem"`
	AddedBy   string    `json:"added_by,omitempty"`
	AddedAt   time.Time `json:"added_at"`
}

// TrustKey records a public key as trusted (idempotent per key id).
func (c *Catalog) TrustKey(ctx context.Context, k TrustedKey) error {
	if k.KeyID == "" || k.PublicPEM == "" {
		return fmt.Errorf("%w: a trusted key needs an id and its public PEM", ErrInvalid)
	}
	_, err := c.db.ExecContext(ctx, c.q(`INSERT INTO trusted_keys (key_id, public_pem, added_by, added_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (key_id) DO NOTHING`), k.KeyID, k.PublicPEM, k.AddedBy, c.nowText())
	if err != nil {
		return fmt.Errorf("trust key %s: %w", k.KeyID, err)
	}
	return nil
}

// TrustedKeys lists the trusted public keys.
func (c *Catalog) TrustedKeys(ctx context.Context) ([]TrustedKey, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT key_id, public_pem, added_by, added_at FROM trusted_keys ORDER BY key_id")
	if err != nil {
		return nil, fmt.Errorf("read trusted keys: %w", err)
	}
	defer rows.Close()
	var out []TrustedKey
	for rows.Next() {
		var k TrustedKey
		var at string
		if err := rows.Scan(&k.KeyID, &k.PublicPEM, &k.AddedBy, &at); err != nil {
			return nil, err
		}
		k.AddedAt = parseTime(at)
		out = append(out, k)
	}
	return out, rows.Err()
}
