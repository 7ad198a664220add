// Command fleetseed fills a catalog with a fleet for bench/fleet.sh: image
// web with versions 1.0.0 .. 1.9.0 (1.0.0 revoked, 1.8.0 in prod) and N
// hosts named seed-NNNNNN spread over those versions, 1 in 7 drifted, a
// third of them Azure VMs without an agent.
//
//	fleetseed -catalog PATH_OR_URL -hosts 100000
//	fleetseed -postgres -url-file u -hosts 100000   # also starts a throwaway
//	                                                # PostgreSQL on loopback and
//	                                                # keeps it until SIGTERM
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/testenv"
)

func main() {
	loc := flag.String("catalog", "", "catalog location (SQLite path or postgres:// URL)")
	pg := flag.Bool("postgres", false, "start a throwaway PostgreSQL on loopback, seed it, write its URL to -url-file and keep it running until SIGTERM")
	urlFile := flag.String("url-file", "", "with -postgres: write the URL here")
	hosts := flag.Int("hosts", 100000, "hosts to seed")
	flag.Parse()
	ctx := context.Background()
	var stop func()
	if *pg {
		p, s, err := testenv.StartPostgresProcess()
		if err != nil {
			fail(err)
		}
		stop = s
		*loc = p.URL
	}
	if err := seed(ctx, *loc, *hosts); err != nil {
		if stop != nil {
			stop()
		}
		fail(err)
	}
	if !*pg {
		return
	}
	if err := os.WriteFile(*urlFile, []byte(*loc+"\n"), 0o600); err != nil {
		stop()
		fail(err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(30 * time.Minute): // bounded: never outlives a forgotten run
	}
	stop()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "fleetseed:", err)
	os.Exit(1)
}

func seed(ctx context.Context, loc string, n int) error {
	c, err := catalog.Open(ctx, loc)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetRequirements(ctx, catalog.DefaultRequirementsImage, "prod", nil); err != nil {
		return err
	}
	var versions []string
	for i := 0; i < 10; i++ {
		v := fmt.Sprintf("1.%d.0", i)
		versions = append(versions, v)
		if _, err := c.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v}); err != nil {
			return err
		}
	}
	if _, err := c.Promote(ctx, catalog.PromoteRequest{Ref: catalog.Ref{Image: "web", Version: "1.8.0"}, Channel: "prod", By: "bench"}); err != nil {
		return err
	}
	if _, err := c.Revoke(ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "bench", By: "bench"}); err != nil {
		return err
	}
	now := time.Now().UTC()
	pgDialect := catalog.IsPostgresURL(loc)
	const batch = 500
	for start := 0; start < n; start += batch {
		var vals []string
		var args []any
		for i := start; i < min(start+batch, n); i++ {
			platform, source := "onprem", "agent"
			if i%3 == 0 {
				platform, source = "azure", "azure"
			}
			drifted := source == "agent" && i%7 == 0
			st := map[string]any{"source": source, "drifted": drifted}
			if drifted {
				st["summary"] = map[string]int{"files_changed": 1}
			}
			raw, _ := json.Marshal(st)
			k := len(args)
			if pgDialect {
				vals = append(vals, fmt.Sprintf("($%d, $%d, $%d, $%d, '', $%d, $%d, $%d, 0, $%d, $%d)", k+1, k+2, k+3, k+4, k+5, k+6, k+7, k+8, k+9))
			} else {
				vals = append(vals, "(?, ?, ?, ?, '', ?, ?, ?, 0, ?, ?)")
			}
			at := now.Add(-time.Duration(i%3600) * time.Second).Format("2006-01-02T15:04:05.000000Z")
			args = append(args, fmt.Sprintf("seed-%06d", i), platform, "web", versions[(i*7)%len(versions)],
				at, string(raw), map[bool]int{true: 1}[drifted], source, at[:13]) // report_hour: the hour of last_report
		}
		_, err := c.DB().ExecContext(ctx, "INSERT INTO hosts (name, platform, image, version, resource_id, last_report, drift_summary, drifted, failed, source, report_hour) VALUES "+
			strings.Join(vals, ", ")+" ON CONFLICT (name) DO NOTHING", args...)
		if err != nil {
			return fmt.Errorf("seed hosts: %w", err)
		}
	}
	_, err = c.DB().ExecContext(ctx, "ANALYZE")
	return err
}
