package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// History of host reports: a host gets a row in host_reports when what its
// state depends on changes (platform, image, version, drift, failure,
// source), and otherwise at most one every HistoryEvery. Rows older than
// HistoryRetention go (PruneFleetHistory), and a host keeps at most
// HistoryPerHost rows, so the table is bounded by the fleet's size.
const (
	HistoryEvery     = time.Hour
	HistoryRetention = 30 * 24 * time.Hour
	HistoryPerHost   = 1000
)

// MaxReportBatch bounds the hosts ReportHosts writes in one transaction.
const MaxReportBatch = 512

// CheckHost validates a host record as ReportHost would store it.
func CheckHost(h Host) error {
	if h.Name == "" || len(h.Name) > 255 {
		return fmt.Errorf("%w: host name must be 1-255 characters", ErrInvalid)
	}
	if len(h.Region) > MaxRegion {
		return fmt.Errorf("%w: region of %s is longer than %d characters", ErrInvalid, h.Name, MaxRegion)
	}
	if h.Platform != PlatformOnprem && h.Platform != PlatformAzure {
		return fmt.Errorf("%w: host platform %q: use onprem or azure", ErrInvalid, h.Platform)
	}
	if len(h.DriftSummary) > 0 {
		if len(h.DriftSummary) > MaxDriftSummary {
			return fmt.Errorf("%w: drift summary of %s is %d bytes, the limit is %d", ErrInvalid, h.Name, len(h.DriftSummary), MaxDriftSummary)
		}
		if !json.Valid(h.DriftSummary) {
			return fmt.Errorf("%w: drift summary of %s is not valid JSON", ErrInvalid, h.Name)
		}
	}
	return nil
}

// hostState is what a host's state and history depend on.
type hostState struct {
	platform, image, version, source string
	drifted, failed                  int
}

type hostWrite struct {
	Host
	idx                     int    // in the caller's batch
	cred                    string // credential digest (agent reports)
	at, summary             string
	st                      hostState
	driftedSince, historyAt string
	history                 bool
}

type hostPrev struct {
	st                      hostState
	driftedSince, historyAt string
	region, reportHour      string // as stored (read from the database only)
}

// reportHour is the hour a report time falls in ("2006-01-02T15"), what
// the hosts_report_hour index orders. The exact last_report is not
// indexed: a report that changes no indexed column then rewrites only its
// host's row (a HOT update on PostgreSQL; on SQLite no index is touched),
// and the hour changes once an hour.
func reportHour(at string) string {
	if len(at) < 13 {
		return ""
	}
	return at[:13]
}

// ReportHosts records a batch of host reports in one transaction (at most
// MaxReportBatch): each host's row (the batch's last report of a host
// wins, as if written one after another) and its history. Either all are
// stored or none (an invalid host fails the batch before anything is
// written). A deadlock with another writer is retried.
func (c *Catalog) ReportHosts(ctx context.Context, hs []Host) error {
	rs := make([]AgentReport, len(hs))
	for i, h := range hs {
		rs[i].Host = h
	}
	_, err := c.recordHosts(ctx, rs, false)
	return err
}

// AgentReport is a host's record as its agent sent it, with the SHA-256
// (hex) of the credential the agent presented.
type AgentReport struct {
	CredentialSHA256 string
	Host             Host
}

// RecordAgentReports checks each report's credential and stores, in one
// transaction as ReportHosts does, the reports whose credential was issued
// to their host. owners[i] is the host report i's credential belongs to
// ("" for an unknown or revoked one): report i was stored exactly when it
// equals the report's host name. One look-up serves the whole batch.
func (c *Catalog) RecordAgentReports(ctx context.Context, rs []AgentReport) (owners []string, err error) {
	return c.recordHosts(ctx, rs, true)
}

func (c *Catalog) recordHosts(ctx context.Context, rs []AgentReport, authenticate bool) ([]string, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	if len(rs) > MaxReportBatch {
		return nil, fmt.Errorf("%w: %d hosts in one batch, the limit is %d", ErrInvalid, len(rs), MaxReportBatch)
	}
	ws := make([]hostWrite, 0, len(rs))
	for i, r := range rs {
		h := r.Host
		if err := CheckHost(h); err != nil {
			return nil, err
		}
		w := hostWrite{Host: h, idx: i, cred: strings.ToLower(r.CredentialSHA256), summary: "{}", at: fmtTime(h.LastReport)}
		if len(h.DriftSummary) > 0 {
			w.summary = string(h.DriftSummary)
		}
		if w.at == "" {
			w.at = c.nowText()
		}
		fl := flagsOf(w.summary)
		w.st = hostState{platform: h.Platform, image: h.Image, version: h.Version, source: fl.Source,
			drifted: boolInt(fl.Drifted), failed: boolInt(fl.Error != "")}
		ws = append(ws, w)
	}
	// one order for every writer: rows are locked by name, so two batches
	// never wait on each other in a cycle over host rows
	sort.SliceStable(ws, func(i, j int) bool { return ws[i].Name < ws[j].Name })
	owners := make([]string, len(rs))
	var err error
	for attempt := 0; attempt < 4; attempt++ {
		err = c.tx(ctx, func(tx *sql.Tx) error {
			mine := ws
			var prev map[string]hostPrev
			if authenticate {
				var err error
				if mine, prev, err = c.authenticate(ctx, tx, ws, owners); err != nil {
					return err
				}
			} else {
				for _, w := range ws {
					owners[w.idx] = w.Name
				}
			}
			if len(mine) == 0 {
				return nil
			}
			return c.writeHosts(ctx, tx, mine, prev)
		})
		if !retryable(err) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return owners, nil
}

// authenticate looks up the batch's credentials at once, fills owners and
// returns the writes whose credential belongs to their host, with the rows
// of those hosts before the batch.
func (c *Catalog) authenticate(ctx context.Context, tx *sql.Tx, ws []hostWrite, owners []string) ([]hostWrite, map[string]hostPrev, error) {
	seen := map[string]bool{}
	var digests []string
	for _, w := range ws {
		if !seen[w.cred] {
			seen[w.cred] = true
			digests = append(digests, w.cred)
		}
	}
	in, inArgs := c.inList(digests)
	// the credentials and, in the same query, their hosts' rows as they
	// were (what the history needs)
	rows, err := tx.QueryContext(ctx, c.q(`SELECT c.token_sha256, c.host, CASE WHEN h.name IS NULL THEN 0 ELSE 1 END,
		COALESCE(h.platform, ''), COALESCE(h.image, ''), COALESCE(h.version, ''), COALESCE(h.source, ''), COALESCE(h.drifted, 0), COALESCE(h.failed, 0),
		COALESCE(h.drifted_since, ''), COALESCE(h.history_at, ''), COALESCE(h.region, ''), COALESCE(h.report_hour, '')
		FROM host_credentials c LEFT JOIN hosts h ON h.name = c.host WHERE c.token_sha256 `+in), inArgs...)
	if err != nil {
		return nil, nil, fmt.Errorf("look up agent credentials: %w", err)
	}
	owner := map[string]string{}
	prev := map[string]hostPrev{}
	for rows.Next() {
		var d, h string
		var known int
		var p hostPrev
		if err := rows.Scan(&d, &h, &known, &p.st.platform, &p.st.image, &p.st.version, &p.st.source, &p.st.drifted, &p.st.failed, &p.driftedSince, &p.historyAt, &p.region, &p.reportHour); err != nil {
			rows.Close()
			return nil, nil, err
		}
		owner[d] = h
		if known == 1 {
			prev[h] = p
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	mine := make([]hostWrite, 0, len(ws))
	for _, w := range ws {
		owners[w.idx] = owner[w.cred]
		if owner[w.cred] == w.Name {
			mine = append(mine, w)
		}
	}
	return mine, prev, nil
}

// retryable reports a PostgreSQL deadlock or serialization failure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// writeHosts stores ws and their history; prev holds the hosts' rows
// before the batch (nil: read them here).
func (c *Catalog) writeHosts(ctx context.Context, tx *sql.Tx, ws []hostWrite, prev map[string]hostPrev) error {
	if prev == nil {
		var err error
		if prev, err = c.previousHosts(ctx, tx, ws); err != nil {
			return err
		}
	}
	var history, capped []*hostWrite
	stored := make(map[string]hostPrev, len(ws)) // the rows as in the database
	for i := range ws {
		w := &ws[i]
		p, known := prev[w.Name]
		if known && (i == 0 || ws[i-1].Name != w.Name) {
			stored[w.Name] = p
		}
		switch {
		case w.st.drifted == 0:
			w.driftedSince = ""
		case known && p.st.drifted == 1 && p.driftedSince != "":
			w.driftedSince = p.driftedSince
		default:
			w.driftedSince = w.at
		}
		w.historyAt = p.historyAt
		if !known || p.st != w.st || p.historyAt == "" || parseTime(w.at).Sub(parseTime(p.historyAt)) >= HistoryEvery {
			w.history, w.historyAt = true, w.at
			history = append(history, w)
			if known {
				capped = append(capped, w)
			}
		}
		prev[w.Name] = hostPrev{st: w.st, driftedSince: w.driftedSince, historyAt: w.historyAt}
	}
	// the last write of each host: a host whose indexed columns (its
	// state, region, report hour) stay as stored gets only its row
	// rewritten on SQLite, whose UPDATE changes every index holding a
	// column it sets; PostgreSQL compares the values itself (HOT update)
	var rows, touches [][]any
	for i := range ws {
		if i+1 < len(ws) && ws[i+1].Name == ws[i].Name {
			continue
		}
		w := &ws[i]
		hour := reportHour(w.at)
		if p, known := stored[w.Name]; known && c.dialect == dialectSQLite && p.st == w.st && p.reportHour == hour && (w.Region == "" || w.Region == p.region) {
			touches = append(touches, []any{w.ResourceID, w.at, w.summary, w.driftedSince, w.historyAt, w.Name})
			continue
		}
		rows = append(rows, []any{w.Name, w.Platform, w.Image, w.Version, w.ResourceID, w.at, w.summary,
			w.st.drifted, w.st.failed, w.st.source, w.driftedSince, w.historyAt, w.Region, hour})
	}
	if len(rows) > 0 {
		err := c.insertRows(ctx, tx, `INSERT INTO hosts (name, platform, image, version, resource_id, last_report, drift_summary, drifted, failed, source, drifted_since, history_at, region, report_hour)`,
			`ON CONFLICT (name) DO UPDATE SET platform = excluded.platform, image = excluded.image,
			drifted = excluded.drifted, failed = excluded.failed, source = excluded.source, version = excluded.version,
			resource_id = CASE WHEN excluded.resource_id = '' THEN hosts.resource_id ELSE excluded.resource_id END,
			region = CASE WHEN excluded.region = '' THEN hosts.region ELSE excluded.region END, last_report = excluded.last_report,
			drift_summary = excluded.drift_summary, drifted_since = excluded.drifted_since, history_at = excluded.history_at,
			report_hour = excluded.report_hour`, "tttttttiittttt", rows)
		if err != nil {
			return fmt.Errorf("record %d hosts: %w", len(rows), err)
		}
	}
	for _, t := range touches {
		if _, err := tx.ExecContext(ctx, `UPDATE hosts SET resource_id = CASE WHEN ?1 = '' THEN resource_id ELSE ?1 END,
			last_report = ?2, drift_summary = ?3, drifted_since = ?4, history_at = ?5 WHERE name = ?6`, t...); err != nil {
			return fmt.Errorf("record host %s: %w", t[5], err)
		}
	}
	if len(history) == 0 {
		return nil
	}
	rows = rows[:0]
	for _, w := range history {
		rows = append(rows, []any{w.Name, w.at, w.Platform, w.Image, w.Version, w.st.drifted, w.st.failed, w.st.source})
	}
	if err := c.insertRows(ctx, tx, "INSERT INTO host_reports (host, at, platform, image, version, drifted, failed, source)", "", "tttttiit", rows); err != nil {
		return fmt.Errorf("record the history of %d hosts: %w", len(history), err)
	}
	// at most HistoryPerHost rows a host: one indexed look-up per known
	// host that got a row (hourly, or when its state changed)
	for _, w := range capped {
		if _, err := tx.ExecContext(ctx, c.q(`DELETE FROM host_reports WHERE host = ? AND at < (SELECT at FROM host_reports WHERE host = ? ORDER BY at DESC LIMIT 1 OFFSET ?)`),
			w.Name, w.Name, HistoryPerHost-1); err != nil {
			return fmt.Errorf("bound the history of %s: %w", w.Name, err)
		}
	}
	return nil
}

// previousHosts reads the rows of ws's hosts as they are before the batch.
func (c *Catalog) previousHosts(ctx context.Context, tx *sql.Tx, ws []hostWrite) (map[string]hostPrev, error) {
	names := make([]string, 0, len(ws))
	for i, w := range ws {
		if i == 0 || ws[i-1].Name != w.Name {
			names = append(names, w.Name)
		}
	}
	in, args := c.inList(names)
	rows, err := tx.QueryContext(ctx, c.q("SELECT name, platform, image, version, source, drifted, failed, drifted_since, history_at, region, report_hour FROM hosts WHERE name "+in), args...)
	if err != nil {
		return nil, fmt.Errorf("read hosts before recording reports: %w", err)
	}
	prev := make(map[string]hostPrev, len(names))
	for rows.Next() {
		var name string
		var p hostPrev
		if err := rows.Scan(&name, &p.st.platform, &p.st.image, &p.st.version, &p.st.source, &p.st.drifted, &p.st.failed, &p.driftedSince, &p.historyAt, &p.region, &p.reportHour); err != nil {
			rows.Close()
			return nil, err
		}
		prev[name] = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return prev, nil
}

func placeholders(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

// inList is "IN (...)" with its arguments, one statement text whatever the
// count, so each connection prepares it once, not once per batch size: on
// PostgreSQL "= ANY(?)" with one array, on SQLite the values of one JSON
// array (json_each).
func (c *Catalog) inList(vals []string) (string, []any) {
	if c.dialect == dialectPostgres {
		return "= ANY(?::text[])", []any{vals}
	}
	b, _ := json.Marshal(vals)
	return "IN (SELECT value FROM json_each(?))", []any{string(b)}
}

// insertRows runs "head VALUES ... tail" for rows, one statement text
// whatever the number of rows: on PostgreSQL once, the rows as arrays
// (rowsOf); on SQLite once a row (in process, there is no round trip to
// save, and a prepared single-row statement costs only its binding).
// types holds a letter a column: t text (string), i integer (int).
func (c *Catalog) insertRows(ctx context.Context, tx *sql.Tx, head, tail, types string, rows [][]any) error {
	if c.dialect == dialectPostgres {
		src, args := c.rowsOf(types, rows)
		_, err := tx.ExecContext(ctx, c.q(head+" "+src+" "+tail), args...)
		return err
	}
	q := head + " VALUES (" + placeholders(len(types)) + ") " + tail
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, q, r...); err != nil {
			return err
		}
	}
	return nil
}

// rowsOf is, on PostgreSQL, the row source of a multi-row INSERT: SELECT *
// FROM unnest(?::text[], ?::bigint[], ...) with one array a column.
func (c *Catalog) rowsOf(types string, rows [][]any) (string, []any) {
	casts := make([]string, len(types))
	args := make([]any, len(types))
	for j, t := range types {
		if t == 'i' {
			col := make([]int64, len(rows))
			for i, r := range rows {
				col[i] = int64(r[j].(int))
			}
			casts[j], args[j] = "?::bigint[]", col
			continue
		}
		col := make([]string, len(rows))
		for i, r := range rows {
			col[i] = r[j].(string)
		}
		casts[j], args[j] = "?::text[]", col
	}
	return "SELECT * FROM unnest(" + strings.Join(casts, ", ") + ")", args
}
