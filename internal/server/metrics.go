package server

import (
	"context"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The metrics, through prometheus/client_golang, with bounded cardinality:
// no series per host. The fleet's gauges are read from the catalog's
// counts at each scrape (the same on every replica); counters count what
// this replica did (sum them across replicas).
type serverMetrics struct {
	reg          *prometheus.Registry
	accepted     prometheus.Counter
	rejected     *prometheus.CounterVec
	enrolments   *prometheus.CounterVec
	batchReports prometheus.Histogram
	commit       prometheus.Histogram
	pulls        prometheus.Counter
	pullErrors   prometheus.Counter
}

// AgesEvery is how old imgpipe_hosts_by_report_age may be: the figure is
// computed (from every host's last report) by the first replica scraped
// after it expired and shared through the catalog.
const AgesEvery = 30 * time.Second

// ReportAgeBounds are the buckets of imgpipe_hosts_by_report_age.
var ReportAgeBounds = []struct {
	Label string
	Age   time.Duration
}{{"5m", 5 * time.Minute}, {"15m", 15 * time.Minute}, {"1h", time.Hour}, {"6h", 6 * time.Hour}, {"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}}

func newServerMetrics(s *Server) *serverMetrics {
	m := &serverMetrics{reg: prometheus.NewRegistry()}
	m.accepted = prometheus.NewCounter(prometheus.CounterOpts{Name: "imgpipe_reports_accepted_total",
		Help: "Agent reports accepted: committed to the catalog, then answered 202 (this replica)."})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imgpipe_reports_rejected_total",
		Help: "Agent reports and enrolments refused, by reason (this replica)."}, []string{"reason"})
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	m.enrolments = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "imgpipe_enrolments_total",
		Help: "Agent enrolments, by outcome: enrolled, or refused because the host holds a credential (this replica)."}, []string{"outcome"})
	m.enrolments.WithLabelValues("enrolled")
	m.enrolments.WithLabelValues("refused")
	m.batchReports = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "imgpipe_intake_batch_reports",
		Help: "Reports stored per catalog transaction (group commit).", Buckets: prometheus.ExponentialBuckets(1, 2, 10)})
	m.commit = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "imgpipe_intake_commit_seconds",
		Help: "Time to store one batch of reports.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	m.pulls = prometheus.NewCounter(prometheus.CounterOpts{Name: "imgpipe_azure_pulls_total", Help: "Azure fleet pulls run by this replica."})
	m.pullErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "imgpipe_azure_pull_errors_total", Help: "Azure fleet pulls of this replica that failed."})
	version, revision := "(devel)", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, st := range bi.Settings {
			if st.Key == "vcs.revision" {
				revision = st.Value
			}
		}
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "imgpipe_build_info",
		Help: "Always 1: the imgpipe build serving, by version and revision."}, []string{"version", "revision", "goversion"})
	buildInfo.WithLabelValues(version, revision, goVersion()).Set(1)
	m.reg.MustRegister(m.accepted, m.rejected, m.enrolments, m.batchReports, m.commit, m.pulls, m.pullErrors, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), fleetCollector{s})
	return m
}

func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return ""
}

func (m *serverMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError, Timeout: 20 * time.Second})
}

// fleetCollector reads the fleet's gauges from the catalog at scrape time.
type fleetCollector struct{ s *Server }

var (
	descHosts = prometheus.NewDesc("imgpipe_hosts",
		"Hosts by image, version, platform and state (the worst that applies, against channel: revoked, error, drifted, behind, unknown, stale, no-agent, ok); an image or version never published is \"unknown\".",
		[]string{"channel", "image", "version", "platform", "state"}, nil)
	descAge = prometheus.NewDesc("imgpipe_hosts_by_report_age",
		"Hosts by the age of their last report (as of at most 30s ago): age=\"15m\" counts those older than 5m and at most 15m old, age=\"older\" those beyond 7d.", []string{"age"}, nil)
	descLastPull = prometheus.NewDesc("imgpipe_azure_last_pull_timestamp_seconds",
		"When the last successful Azure pull of any replica finished.", nil, nil)
)

func (fc fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHosts
	ch <- descAge
	ch <- descLastPull
}

func (fc fleetCollector) Collect(ch chan<- prometheus.Metric) {
	s := fc.s
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	groups, err := s.cfg.Catalog.FleetBreakdown(ctx, s.cfg.Channel, s.staleBefore())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descHosts, err)
		return
	}
	for _, g := range groups {
		ch <- prometheus.MustNewConstMetric(descHosts, prometheus.GaugeValue, float64(g.Hosts), s.cfg.Channel, g.Image, g.Version, g.Platform, g.State)
	}
	bounds := make([]time.Duration, len(ReportAgeBounds))
	for i, b := range ReportAgeBounds {
		bounds[i] = b.Age
	}
	// read every row: kept in the catalog for AgesEvery, for every replica
	ages, _, err := s.cfg.Catalog.CachedReportAges(ctx, s.cfg.Now(), bounds, AgesEvery)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descAge, err)
		return
	}
	for i, n := range ages {
		age := "older"
		if i < len(ReportAgeBounds) {
			age = ReportAgeBounds[i].Label
		}
		ch <- prometheus.MustNewConstMetric(descAge, prometheus.GaugeValue, float64(n), age)
	}
	if s.cfg.Azure != nil {
		done, err := s.cfg.Catalog.JobDone(ctx, jobAzurePull)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(descLastPull, err)
			return
		}
		if !done.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastPull, prometheus.GaugeValue, float64(done.Unix()))
		}
	}
}
