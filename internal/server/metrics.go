package server

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// metrics writes the Prometheus text exposition format (version 0.0.4).
// Fleet gauges are computed from the catalog on every scrape.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	sum, err := s.cfg.Catalog.FleetSummary(r.Context(), s.cfg.Channel, s.staleBefore())
	if err != nil {
		slog.Error("metrics: fleet", "err", err)
		http.Error(w, "catalog error", http.StatusInternalServerError)
		return
	}
	byPlatform, byStatus := sum.ByPlatform, sum.ByState
	drifted, behind, revoked := sum.Drifted, sum.Behind, sum.Revoked
	var b bytes.Buffer
	family := func(name, typ, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	sample := func(name string, labels map[string]string, v int64) {
		b.WriteString(name)
		if len(labels) > 0 {
			keys := make([]string, 0, len(labels))
			for k := range labels {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			b.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s=\"%s\"", k, escapeLabel(labels[k]))
			}
			b.WriteByte('}')
		}
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(v, 10))
		b.WriteByte('\n')
	}
	labelled := func(name, label string, m map[string]int) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			sample(name, map[string]string{label: k}, int64(m[k]))
		}
	}
	family("imgpipe_hosts", "gauge", "Hosts in the fleet, by platform.")
	labelled("imgpipe_hosts", "platform", byPlatform)
	family("imgpipe_hosts_by_status", "gauge", "Hosts by the worst state of their row on the dashboard.")
	labelled("imgpipe_hosts_by_status", "status", byStatus)
	family("imgpipe_hosts_drifted", "gauge", "Hosts whose last check found configuration drift.")
	sample("imgpipe_hosts_drifted", nil, int64(drifted))
	family("imgpipe_hosts_behind", "gauge", "Hosts running a version older than their channel's ("+s.cfg.Channel+").")
	sample("imgpipe_hosts_behind", map[string]string{"channel": s.cfg.Channel}, int64(behind))
	family("imgpipe_hosts_revoked", "gauge", "Hosts running a revoked version.")
	sample("imgpipe_hosts_revoked", nil, int64(revoked))
	family("imgpipe_reports_accepted_total", "counter", "Agent reports accepted and stored.")
	sample("imgpipe_reports_accepted_total", nil, s.accepted.Load())
	family("imgpipe_reports_rejected_total", "counter", "Agent reports rejected, by reason.")
	s.rejMu.Lock()
	rej := make(map[string]int, len(s.rejected))
	for k, v := range s.rejected {
		rej[k] = int(v)
	}
	s.rejMu.Unlock()
	labelled("imgpipe_reports_rejected_total", "reason", rej)
	family("imgpipe_azure_pulls_total", "counter", "Azure fleet pulls run.")
	sample("imgpipe_azure_pulls_total", nil, s.pulls.Load())
	family("imgpipe_azure_pull_errors_total", "counter", "Azure fleet pulls that failed.")
	sample("imgpipe_azure_pull_errors_total", nil, s.pullErrors.Load())
	if p := s.lastPull.Load(); p != nil {
		family("imgpipe_azure_last_pull_timestamp_seconds", "gauge", "When the last successful Azure pull finished.")
		sample("imgpipe_azure_last_pull_timestamp_seconds", nil, p.Finished.Unix())
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeLabel(s string) string { return labelEscaper.Replace(s) }
