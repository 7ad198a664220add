package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Kinds of access tokens.
const (
	TokenBearer  = "bearer"  // for automation: imgpipe serve token create
	TokenSession = "session" // a signed-in person's browser session
)

// AccessToken is a credential for reading the fleet server. The catalog
// keeps its SHA-256, never the secret.
type AccessToken struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Name      string    `json:"name"`              // bearer: its label; session: the person
	Subject   string    `json:"subject,omitempty"` // session: the issuer's subject
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"` // zero: never
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	LastUsed  time.Time `json:"last_used_at,omitzero"`
}

// Valid says whether the token may be used at now.
func (t AccessToken) Valid(now time.Time) error {
	switch {
	case !t.RevokedAt.IsZero():
		return fmt.Errorf("the %s token %q was revoked at %s", t.Kind, t.Name, t.RevokedAt.UTC().Format(time.RFC3339))
	case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
		return fmt.Errorf("the %s token %q expired at %s", t.Kind, t.Name, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidateTokenName checks a bearer token's name: 1-64 letters, digits,
// '.', '_', '@' or '-', starting with a letter or digit.
func ValidateTokenName(name string) error {
	if !tokenName.MatchString(name) {
		return fmt.Errorf("%w: token name %q: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", ErrInvalid, name)
	}
	return nil
}

// AddAccessToken records a token by the SHA-256 (hex) of its secret. A
// bearer token's name must be free among the live ones (ErrConflict).
func (c *Catalog) AddAccessToken(ctx context.Context, t AccessToken, secretSHA256 string) (AccessToken, error) {
	if t.Kind != TokenBearer && t.Kind != TokenSession {
		return t, fmt.Errorf("%w: token kind %q: use bearer or session", ErrInvalid, t.Kind)
	}
	if t.Kind == TokenBearer {
		if err := ValidateTokenName(t.Name); err != nil {
			return t, err
		}
	} else if t.Name == "" || len(t.Name) > 255 {
		return t, fmt.Errorf("%w: a session needs a person's name of at most 255 characters", ErrInvalid)
	}
	if len(secretSHA256) != 64 {
		return t, fmt.Errorf("%w: token digest must be a hex SHA-256", ErrInvalid)
	}
	t.CreatedAt = c.now().UTC()
	err := c.db.QueryRowContext(ctx, c.q(`INSERT INTO access_tokens (kind, name, subject, token_sha256, created_by, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), t.Kind, t.Name, t.Subject, strings.ToLower(secretSHA256), t.CreatedBy,
		fmtTime(t.CreatedAt), fmtTime(t.ExpiresAt)).Scan(&t.ID)
	if err != nil {
		if t.Kind == TokenBearer && isUniqueViolation(err) {
			return t, fmt.Errorf("%w: a live bearer token is named %q: revoke it first (imgpipe serve token revoke %s) or pick another name", ErrConflict, t.Name, t.Name)
		}
		return t, fmt.Errorf("record the %s token %s: %w", t.Kind, t.Name, err)
	}
	return t, nil
}

// isUniqueViolation recognises a unique constraint failure of SQLite or
// PostgreSQL (SQLSTATE 23505).
func isUniqueViolation(err error) bool {
	m := err.Error()
	return strings.Contains(m, "UNIQUE constraint failed") || strings.Contains(m, "23505") || strings.Contains(m, "duplicate key")
}

const tokenCols = "id, kind, name, subject, created_by, created_at, expires_at, revoked_at, last_used_at"

func scanToken(sc interface{ Scan(...any) error }) (AccessToken, error) {
	var t AccessToken
	var created, expires, revoked, used string
	if err := sc.Scan(&t.ID, &t.Kind, &t.Name, &t.Subject, &t.CreatedBy, &created, &expires, &revoked, &used); err != nil {
		return t, err
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt, t.LastUsed = parseTime(created), parseTime(expires), parseTime(revoked), parseTime(used)
	return t, nil
}

// AccessTokenFor returns the token whose secret has this SHA-256 (hex),
// revoked and expired ones included (check Valid), or ErrNotFound.
func (c *Catalog) AccessTokenFor(ctx context.Context, secretSHA256 string) (AccessToken, error) {
	t, err := scanToken(c.db.QueryRowContext(ctx, c.q("SELECT "+tokenCols+" FROM access_tokens WHERE token_sha256 = ?"), strings.ToLower(secretSHA256)))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("%w: no access token has this secret", ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("look up an access token: %w", err)
	}
	return t, nil
}

// TouchAccessToken records that a token was used at at.
func (c *Catalog) TouchAccessToken(ctx context.Context, id int64, at time.Time) error {
	if _, err := c.db.ExecContext(ctx, c.q("UPDATE access_tokens SET last_used_at = ? WHERE id = ?"), fmtTime(at), id); err != nil {
		return fmt.Errorf("record the use of access token %d: %w", id, err)
	}
	return nil
}

// AccessTokens lists the tokens of a kind ("" for all), newest first;
// revoked ones only when withRevoked.
func (c *Catalog) AccessTokens(ctx context.Context, kind string, withRevoked bool) ([]AccessToken, error) {
	q := "SELECT " + tokenCols + " FROM access_tokens WHERE 1 = 1"
	var args []any
	if kind != "" {
		q += " AND kind = ?"
		args = append(args, kind)
	}
	if !withRevoked {
		q += " AND revoked_at = ''"
	}
	rows, err := c.db.QueryContext(ctx, c.q(q+" ORDER BY created_at DESC, id DESC"), args...)
	if err != nil {
		return nil, fmt.Errorf("list access tokens: %w", err)
	}
	defer rows.Close()
	out := []AccessToken{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeBearerToken revokes the live bearer token named name (ErrNotFound
// when there is none).
func (c *Catalog) RevokeBearerToken(ctx context.Context, name string) (AccessToken, error) {
	t, err := scanToken(c.db.QueryRowContext(ctx, c.q("UPDATE access_tokens SET revoked_at = ? WHERE kind = ? AND name = ? AND revoked_at = '' RETURNING "+tokenCols),
		c.nowText(), TokenBearer, name))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("%w: no live bearer token is named %q (imgpipe serve token list shows them)", ErrNotFound, name)
	}
	if err != nil {
		return t, fmt.Errorf("revoke the bearer token %s: %w", name, err)
	}
	return t, nil
}

// EndSession revokes the session whose secret has this SHA-256 (signing
// out); ending an unknown or ended session is no error.
func (c *Catalog) EndSession(ctx context.Context, secretSHA256 string) error {
	_, err := c.db.ExecContext(ctx, c.q("UPDATE access_tokens SET revoked_at = ? WHERE kind = ? AND token_sha256 = ? AND revoked_at = ''"),
		c.nowText(), TokenSession, strings.ToLower(secretSHA256))
	if err != nil {
		return fmt.Errorf("end a session: %w", err)
	}
	return nil
}

// PruneSessions deletes sessions that expired or ended before before, and
// returns how many.
func (c *Catalog) PruneSessions(ctx context.Context, before time.Time) (int64, error) {
	b := fmtTime(before)
	res, err := c.db.ExecContext(ctx, c.q(`DELETE FROM access_tokens WHERE kind = ? AND
		((expires_at <> '' AND expires_at < ?) OR (revoked_at <> '' AND revoked_at < ?))`), TokenSession, b, b)
	if err != nil {
		return 0, fmt.Errorf("prune sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
