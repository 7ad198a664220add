package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// EnrollHost records the credential issued to host (its SHA-256, hex). A
// host holds one credential: enrolling a host that already has one is
// ErrConflict, so a machine holding the fleet token cannot take over the
// record of a machine that enrolled before it (RevokeHostCredential lets
// an operator re-enrol a rebuilt machine).
func (c *Catalog) EnrollHost(ctx context.Context, host, tokenSHA256 string) error {
	if host == "" || len(host) > 255 {
		return fmt.Errorf("%w: host name must be 1-255 characters", ErrInvalid)
	}
	if len(tokenSHA256) != 64 {
		return fmt.Errorf("%w: credential digest must be a hex SHA-256", ErrInvalid)
	}
	res, err := c.db.ExecContext(ctx, c.q(`INSERT INTO host_credentials (host, token_sha256, created_at) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`), host, strings.ToLower(tokenSHA256), c.nowText())
	if err != nil {
		return fmt.Errorf("enrol host %s: %w", host, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: host %s is already enrolled (if the machine was rebuilt, revoke its credential first: imgpipe serve revoke-agent %s)", ErrConflict, host, host)
	}
	return nil
}

// HostForCredential returns the host a credential (its SHA-256, hex) was
// issued to, or ErrNotFound.
func (c *Catalog) HostForCredential(ctx context.Context, tokenSHA256 string) (string, error) {
	var host string
	err := c.db.QueryRowContext(ctx, c.q("SELECT host FROM host_credentials WHERE token_sha256 = ?"), strings.ToLower(tokenSHA256)).Scan(&host)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("%w: no host holds this credential", ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("look up an agent credential: %w", err)
	}
	return host, nil
}

// RevokeHostCredential forgets host's credential: its agent's reports are
// refused until it enrols again.
func (c *Catalog) RevokeHostCredential(ctx context.Context, host string) error {
	res, err := c.db.ExecContext(ctx, c.q("DELETE FROM host_credentials WHERE host = ?"), host)
	if err != nil {
		return fmt.Errorf("revoke the credential of %s: %w", host, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: host %s has no agent credential", ErrNotFound, host)
	}
	return nil
}
