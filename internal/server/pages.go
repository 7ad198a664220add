package server

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"imgpipe/internal/catalog"
)

// The pages linked both ways: image -> version -> host, and back. Each
// page reads what it shows through the catalog's keyed, paged or grouped
// queries, never the whole fleet.

// uiRoutes registers the image, version and sign-in pages.
func (s *Server) uiRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /images/{image}", s.pageImage)
	m.HandleFunc("GET /images/{image}/versions/{version}", s.pageVersion)
	s.authRoutes(m)
}

func imageURL(image string) string { return "/images/" + url.PathEscape(image) }

func versionURL(image, version string) string {
	return imageURL(image) + "/versions/" + url.PathEscape(version)
}

func hostURL(name string) string { return "/hosts/" + url.PathEscape(name) }

// imagePage is an image: its channels, the versions its hosts run (a
// chart), and its versions with where their bits are.
type imagePage struct {
	page
	Channel string
	Image   *ImageVersions
	Chart   *barChart
	Hosts   int
	// the last week, from the fleet snapshots
	Drift, Versions *areaChart
	Loop            *catalog.LoopState // the reconciler's (loop.go)
}

func (s *Server) pageImage(w http.ResponseWriter, r *http.Request) {
	iv, err := s.imageVersions(r, r.PathValue("image"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	if len(iv.Versions) == 0 && len(iv.Channels) == 0 {
		if _, err := s.cfg.Catalog.Versions(r.Context(), iv.Image); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	p := imagePage{page: page{Title: iv.Image}, Channel: s.cfg.Channel, Image: iv, Chart: versionsChart(s.cfg.Channel, iv)}
	for _, v := range iv.Versions {
		p.Hosts += v.Hosts
	}
	points, err := s.series.series(r.Context(), s.cfg.Catalog, iv.Image, s.cfg.Now().Add(-7*24*time.Hour))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p.Drift, p.Versions = driftChart(points), versionsOverTime(iv, s.cfg.Channel, points)
	if p.Loop, err = s.loopOf(r.Context(), iv.Image); err != nil {
		s.pageError(w, r, err)
		return
	}
	s.render(w, r, "image.html", &p)
}

// versionPage is one version: status, provenance, lineage, tests,
// rollouts, and a page of the hosts running it.
type versionPage struct {
	page
	Channel  string
	Lineage  *catalog.Lineage
	Children []catalog.Version
	Tested   string // passed, failed or ""
	Tests    []catalog.TestRun
	Rollouts []catalog.Rollout
	Regions  []string
	Onprem   []string
	Hosts    []HostRow
	Matched  int
	Filter   catalog.FleetFilter
	More     string // the fleet page of all its hosts when they are more than a page
	// ChannelVersion is the version the server's channel points at ("" none)
	ChannelVersion string
	Older          bool // this version is older than the channel's
}

// VersionHosts is the number of hosts listed on a version's page.
const VersionHosts = 25

func (s *Server) pageVersion(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	ref := catalog.Ref{Image: r.PathValue("image"), Version: r.PathValue("version")}
	lin, err := s.cfg.Catalog.Lineage(ctx, ref)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := versionPage{page: page{Title: ref.String()}, Channel: s.cfg.Channel, Lineage: lin}
	if p.Children, err = s.cfg.Catalog.Children(ctx, ref); err != nil {
		s.pageError(w, r, err)
		return
	}
	if p.Tests, err = s.cfg.Catalog.TestRuns(ctx, ref); err != nil {
		s.pageError(w, r, err)
		return
	}
	p.Tested = catalog.TestState(p.Tests, lin.Version.ArtifactSHA256)
	chs, err := s.cfg.Catalog.Channels(ctx, ref.Image)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	for _, c := range chs {
		if c.Name == s.cfg.Channel {
			p.ChannelVersion = c.Version
		}
	}
	p.Older = p.ChannelVersion != "" && catalog.CompareVersions(ref.Version, p.ChannelVersion) < 0
	rollouts, err := s.cfg.Catalog.Rollouts(ctx, ref.Image, 20)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	for _, ro := range rollouts {
		if ro.Ref == ref {
			p.Rollouts = append(p.Rollouts, ro)
		}
	}
	var walk func([]*catalog.LineageNode)
	walk = func(ns []*catalog.LineageNode) {
		for _, n := range ns {
			if n.State != catalog.StateDeleted && n.State != catalog.StateFailed {
				switch n.Kind {
				case catalog.KindRegion, catalog.KindGalleryVersion:
					if n.Location != "" {
						p.Regions = append(p.Regions, n.Location)
					}
				case catalog.KindOnprem:
					p.Onprem = append(p.Onprem, n.Location)
				}
			}
			walk(n.Children)
		}
	}
	walk(lin.Roots)
	slices.Sort(p.Regions)
	p.Regions = slices.Compact(p.Regions)
	p.Filter = catalog.FleetFilter{Image: ref.Image, Version: ref.Version, Limit: VersionHosts}
	rows, fp, err := s.fleet(r, s.cfg.Channel, p.Filter)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p.Hosts, p.Matched = rows, fp.Total
	if p.Matched > len(p.Hosts) {
		p.More = fleetURL(p.Filter, "")
	}
	s.render(w, r, "version.html", &p)
}

// hostPage is a host with what to do about it and the rollouts that
// concern it.
type hostPage struct {
	page
	Channel  string
	Host     *HostRow
	Advice   []string
	Rollouts []hostRollout
	History  []catalog.HostReport // newest first
	// DriftedSince: drifted without a break since (zero when clean)
	DriftedSince time.Time
}

// HostHistoryRows is the number of reports listed on a host's page.
const HostHistoryRows = 50

type hostRollout struct {
	catalog.Rollout
	Member *catalog.RolloutMember // the host's own member, when it is one
}

// advice says what to do about a host, worst problem first: cattle, not
// pets, so the answer to drift is a redeploy of the channel's version.
func advice(h *HostRow, channel string) []string {
	target := h.ChannelVersion
	redeploy := fmt.Sprintf("redeploy to %s (channel %s)", target, channel)
	if target == "" {
		redeploy = fmt.Sprintf("promote a version of %s to channel %s, then redeploy to it", dashOr(h.Image), channel)
	}
	var out []string
	switch {
	case h.Revoked && h.Version == target:
		out = append(out, fmt.Sprintf("version %s is revoked and still the channel's: rebuild (imgpipe reconcile), promote, then redeploy", h.Version))
	case h.Revoked:
		out = append(out, fmt.Sprintf("version %s is revoked: %s", h.Version, redeploy))
	}
	if h.State.Error != "" {
		out = append(out, "the agent could not check the host: fix the error below, then wait for its next report")
	}
	if h.State.Drifted {
		out = append(out, "the host drifted from its image: "+redeploy+" rather than repair it in place")
	}
	if !h.Revoked && h.VersionsBehind > 0 {
		out = append(out, fmt.Sprintf("%d version(s) behind: %s", h.VersionsBehind, redeploy))
	}
	if h.Unknown && h.Image != "" {
		out = append(out, fmt.Sprintf("the catalog has no version %s of %s: check the host's image identity, or record the version", dashOr(h.Version), h.Image))
	}
	if h.Stale {
		out = append(out, "not heard from recently: check that its agent runs and reaches the server")
	}
	return out
}

func dashOr(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// rolloutTargets says whether a rollout moves the Azure resource id (a
// scale set, a VM).
func rolloutTargets(ro catalog.Rollout, resourceID string) bool {
	if resourceID == "" {
		return false
	}
	if strings.EqualFold(ro.Target, resourceID) {
		return true
	}
	for _, t := range ro.Targets {
		if strings.EqualFold(t.Target, resourceID) {
			return true
		}
	}
	return false
}

func (s *Server) pageHost(w http.ResponseWriter, r *http.Request) {
	h, err := s.host(r, r.PathValue("name"))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := hostPage{page: page{Title: h.Name}, Host: h, Channel: s.cfg.Channel, Advice: advice(h, s.cfg.Channel)}
	if p.History, err = s.cfg.Catalog.HostHistory(r.Context(), h.Name, time.Time{}, HostHistoryRows); err != nil {
		s.pageError(w, r, err)
		return
	}
	if h.State.Drifted {
		if p.DriftedSince, err = s.cfg.Catalog.DriftedSince(r.Context(), h.Name); err != nil {
			s.pageError(w, r, err)
			return
		}
	}
	if h.Image != "" {
		rollouts, err := s.cfg.Catalog.Rollouts(r.Context(), h.Image, 10)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		for _, ro := range rollouts {
			hr := hostRollout{Rollout: ro}
			for i, m := range ro.Members {
				if m.Member == h.Name {
					hr.Member = &ro.Members[i]
				}
			}
			if hr.Member != nil || rolloutTargets(ro, h.ResourceID) {
				p.Rollouts = append(p.Rollouts, hr)
			}
		}
		// a rollout under way changes what to do: wait for it, or act on its plan
		for _, ro := range p.Rollouts {
			if ro.Done() {
				continue
			}
			say := fmt.Sprintf("rollout %d of %s is %s", ro.ID, ro.Ref.Version, ro.State)
			if m := ro.Member; m != nil {
				say += fmt.Sprintf(" (this host: %s)", m.State)
				if m.Plan != "" {
					say += fmt.Sprintf("; its replacement plan: imgpipe rollout scripts %d", ro.ID)
				}
			}
			p.Advice = append([]string{say}, p.Advice...)
			break
		}
	}
	s.render(w, r, "host.html", &p)
}
