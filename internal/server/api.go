package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/catalog"
)

// HostRow is a host as the API and the dashboard show it.
type HostRow struct {
	Name           string    `json:"name"`
	Platform       string    `json:"platform"`
	Image          string    `json:"image,omitempty"`
	Version        string    `json:"version,omitempty"`
	ResourceID     string    `json:"resource_id,omitempty"`
	Region         string    `json:"region,omitempty"`
	LastSeen       time.Time `json:"last_seen"`
	Channel        string    `json:"channel"`
	ChannelVersion string    `json:"channel_version,omitempty"`
	VersionsBehind int       `json:"versions_behind"`
	Revoked        bool      `json:"revoked"`
	Unknown        bool      `json:"unknown,omitempty"`
	Stale          bool      `json:"stale,omitempty"`
	// Status sums the row up, worst first: revoked, error, drifted, behind,
	// unknown, stale, ok (azure-only hosts without drift data: no-agent).
	Status string    `json:"status"`
	State  HostState `json:"state"`
}

// Drift counts of a row (0 when nothing was reported).
func (h HostRow) Added() int { return h.count(func(s HostState) int { return s.Summary.FilesAdded }) }
func (h HostRow) Removed() int {
	return h.count(func(s HostState) int { return s.Summary.FilesRemoved })
}
func (h HostRow) Changed() int {
	return h.count(func(s HostState) int { return s.Summary.FilesChanged })
}
func (h HostRow) Packages() int {
	return h.count(func(s HostState) int { return s.Summary.Packages + s.Summary.Services })
}
func (h HostRow) count(f func(HostState) int) int {
	if h.State.Summary == nil {
		return 0
	}
	return f(h.State)
}

// row turns a catalog host view into a row.
func (s *Server) row(v catalog.HostView) HostRow {
	h := HostRow{
		Name: v.Name, Platform: v.Platform, Image: v.Image, Version: v.Version, ResourceID: v.ResourceID, Region: v.Region,
		LastSeen: v.LastReport, Channel: v.Channel, ChannelVersion: v.ChannelVersion,
		VersionsBehind: v.VersionsBehind, Revoked: v.Revoked, Unknown: v.Unknown,
		State: parseState(v.DriftSummary), Status: v.State,
	}
	h.Stale = !v.LastReport.IsZero() && s.cfg.Now().Sub(v.LastReport) > s.cfg.StaleAfter
	return h
}

func (s *Server) staleBefore() time.Time { return s.cfg.Now().Add(-s.cfg.StaleAfter) }

// fleetFilter reads a fleet filter from a URL query: state, image,
// version, platform, region, q (a substring of the host name), limit, and
// after or before (a cursor: the page's Next or Prev).
func fleetFilter(r *http.Request, defLimit int) (catalog.FleetFilter, error) {
	q := r.URL.Query()
	f := catalog.FleetFilter{State: q.Get("state"), Image: q.Get("image"), Version: q.Get("version"), Platform: q.Get("platform"),
		Region: q.Get("region"), Search: q.Get("q"), Limit: defLimit}
	if q.Has("offset") {
		return f, fmt.Errorf("%w: offset is not supported: page with after= (the X-Next-Cursor of a page, or its Link rel=next)", catalog.ErrInvalid)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return f, fmt.Errorf("%w: limit=%q: give a non-negative number", catalog.ErrInvalid, v)
		}
		f.Limit = n
	}
	var err error
	if f.After, err = catalog.ParseFleetCursor(q.Get("after")); err != nil {
		return f, err
	}
	if f.Before, err = catalog.ParseFleetCursor(q.Get("before")); err != nil {
		return f, err
	}
	if len(f.Search) > 255 {
		return f, fmt.Errorf("%w: q is longer than 255 characters", catalog.ErrInvalid)
	}
	if len(f.Region) > catalog.MaxRegion {
		return f, fmt.Errorf("%w: region is longer than %d characters", catalog.ErrInvalid, catalog.MaxRegion)
	}
	return f, nil
}

// fleet returns a page of hosts, worst first, with how many match and
// the cursors of the pages around it.
func (s *Server) fleet(r *http.Request, channel string, f catalog.FleetFilter) ([]HostRow, catalog.FleetPage, error) {
	f.StaleBefore = s.staleBefore()
	page, err := s.cfg.Catalog.FleetHosts(r.Context(), channel, f)
	if err != nil {
		return nil, page, err
	}
	rows := make([]HostRow, 0, len(page.Hosts))
	for _, v := range page.Hosts {
		rows = append(rows, s.row(v))
	}
	return rows, page, nil
}

func (s *Server) host(r *http.Request, name string) (*HostRow, error) {
	v, err := s.cfg.Catalog.FleetHost(r.Context(), s.cfg.Channel, name, s.staleBefore())
	if err != nil {
		return nil, err
	}
	h := s.row(v)
	return &h, nil
}

// apiHosts lists hosts, worst state first, filtered and paged by the
// query (state, image, version, platform, region, q, limit <= 10000
// (default 100), after or before); X-Total-Count says how many match,
// X-Next-Cursor (and Link rel="next") gives the next page's after=, and
// X-Prev-Cursor (Link rel="prev") the previous page's before=.
func (s *Server) apiHosts(w http.ResponseWriter, r *http.Request) {
	f, err := fleetFilter(r, 100)
	if err != nil {
		s.catalogError(w, err)
		return
	}
	rows, page, err := s.fleet(r, s.cfg.Channel, f)
	if err != nil {
		s.catalogError(w, err)
		return
	}
	h := w.Header()
	h.Set("X-Total-Count", strconv.Itoa(page.Total))
	var links []string
	link := func(key string, cur catalog.FleetCursor, rel string) {
		q := r.URL.Query()
		q.Del("after")
		q.Del("before")
		q.Set(key, cur.String())
		links = append(links, fmt.Sprintf("<%s?%s>; rel=%q", r.URL.Path, q.Encode(), rel))
	}
	if !page.Next.IsZero() {
		h.Set("X-Next-Cursor", page.Next.String())
		link("after", page.Next, "next")
	}
	if !page.Prev.IsZero() {
		h.Set("X-Prev-Cursor", page.Prev.String())
		link("before", page.Prev, "prev")
	}
	if len(links) > 0 {
		h.Set("Link", strings.Join(links, ", "))
	}
	writeJSON(w, http.StatusOK, rows)
}

func (s *Server) apiHost(w http.ResponseWriter, r *http.Request) {
	h, err := s.host(r, r.PathValue("name"))
	if err != nil {
		s.catalogError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) apiImages(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.cfg.Catalog.Images(r.Context())
	if err != nil {
		s.catalogError(w, err)
		return
	}
	if imgs == nil {
		imgs = []catalog.Image{}
	}
	writeJSON(w, http.StatusOK, imgs)
}

// VersionRow is a version with the channels pointing at it and where its
// bits are.
type VersionRow struct {
	Version   string    `json:"version"`
	Status    string    `json:"status"`
	Channels  []string  `json:"channels,omitempty"`
	Regions   []string  `json:"regions,omitempty"` // Azure regions the gallery version is replicated to
	Onprem    []string  `json:"onprem,omitempty"`  // on-prem library copies
	Gallery   string    `json:"gallery_version,omitempty"`
	Revoked   string    `json:"revoked_reason,omitempty"`
	Outdated  string    `json:"outdated,omitempty"`
	Tested    string    `json:"tested,omitempty"` // passed, failed or "" (none) for its artifact digest (imgpipe test)
	CreatedAt time.Time `json:"created_at"`
	Hosts     int       `json:"hosts"`
}

// ImageVersions is an image's channels and versions.
type ImageVersions struct {
	Image    string            `json:"image"`
	Channels []catalog.Channel `json:"channels"`
	Versions []VersionRow      `json:"versions"`
}

func (s *Server) imageVersions(r *http.Request, image string) (*ImageVersions, error) {
	ctx := r.Context()
	if err := catalog.ValidateImageName(image); err != nil {
		return nil, fmt.Errorf("%w: %v", catalog.ErrInvalid, err)
	}
	vs, err := s.cfg.Catalog.Versions(ctx, image)
	if err != nil {
		return nil, err
	}
	chs, err := s.cfg.Catalog.Channels(ctx, image)
	if err != nil {
		return nil, err
	}
	running, err := s.cfg.Catalog.HostsPerVersion(ctx, image)
	if err != nil {
		return nil, err
	}
	out := &ImageVersions{Image: image, Channels: chs, Versions: []VersionRow{}}
	if out.Channels == nil {
		out.Channels = []catalog.Channel{}
	}
	for _, v := range vs {
		row := VersionRow{Version: v.Version, Status: v.Status, Channels: v.Channels, Outdated: v.Outdated, CreatedAt: v.CreatedAt, Hosts: running[v.Version]}
		if v.Revocation != nil {
			row.Revoked = v.Revocation.Reason
		}
		tests, err := s.cfg.Catalog.TestRuns(ctx, v.Ref())
		if err != nil {
			return nil, err
		}
		row.Tested = catalog.TestState(tests, v.ArtifactSHA256)
		copies, err := s.cfg.Catalog.Copies(ctx, v.Ref())
		if err != nil {
			return nil, err
		}
		for _, c := range copies {
			if c.State == catalog.StateDeleted || c.State == catalog.StateFailed {
				continue
			}
			switch c.Kind {
			case catalog.KindRegion:
				row.Regions = append(row.Regions, c.Location)
			case catalog.KindGalleryVersion:
				row.Gallery = c.ResourceID
				if c.Location != "" && !slices.Contains(row.Regions, c.Location) {
					row.Regions = append(row.Regions, c.Location)
				}
			case catalog.KindOnprem:
				row.Onprem = append(row.Onprem, c.Location)
			}
		}
		sort.Strings(row.Regions)
		row.Regions = slices.Compact(row.Regions)
		out.Versions = append(out.Versions, row)
	}
	return out, nil
}

func (s *Server) apiVersions(w http.ResponseWriter, r *http.Request) {
	iv, err := s.imageVersions(r, r.PathValue("image"))
	if err != nil {
		s.catalogError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, iv)
}

// apiReport takes an agent's report: a host credential, JSON only, at
// most agent.MaxReportBytes read under a deadline before an intake slot is
// taken, strict decoding (unknown fields and trailing data refused), every
// field validated, and the report's host must be the credential's (checked
// with the batch's other credentials, in its transaction); anything wrong
// gets a 4xx and nothing is stored.
func (s *Server) apiReport(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AgentToken == "" {
		s.reject(w, RejectDisabled, http.StatusServiceUnavailable, "agent intake is disabled: start serve with --agent-token or --agent-token-file")
		return
	}
	if _, ok := bearer(r); !ok {
		s.reject(w, RejectUnauthorized, http.StatusUnauthorized, "missing bearer token: enrol with the fleet token at %s, then send the host credential", agent.EnrollPath)
		return
	}
	body, ok := s.readBody(w, r, agent.MaxReportBytes)
	if !ok {
		return
	}
	cred, ok := s.reportCredential(w, r)
	if !ok {
		return
	}
	var rep agent.Report
	if err := decodeStrict(body, &rep); err != nil {
		s.reject(w, RejectBadJSON, http.StatusBadRequest, "report is not valid JSON of the %s format: %s", agent.Schema, clipErr(err))
		return
	}
	if err := rep.Validate(); err != nil {
		s.reject(w, RejectInvalid, http.StatusBadRequest, "%v", err)
		return
	}
	select {
	case s.intake <- struct{}{}:
		defer func() { <-s.intake }()
	default:
		s.reject(w, RejectBusy, http.StatusServiceUnavailable, "too many reports at once; retry later")
		return
	}
	st := HostState{
		Source: SourceAgent, OS: rep.OS, BuildID: rep.BuildID, Depth: rep.Depth, CheckedAt: rep.CheckedAt,
		DurationMS: rep.DurationMS, Drifted: rep.Drifted, Changes: rep.Changes, Truncated: rep.Truncated,
		Error: rep.Error, Agent: rep.Agent,
	}
	if rep.Error == "" {
		sum := rep.Summary
		st.Summary = &sum
	}
	raw, err := json.Marshal(st)
	if err != nil {
		s.reject(w, RejectInvalid, http.StatusBadRequest, "report cannot be stored: %v", err)
		return
	}
	// an empty resource id or region keeps the one the Azure pull found
	h := catalog.Host{Name: rep.Host, Platform: rep.Platform, Region: rep.Region, Image: rep.Image, Version: rep.Version,
		LastReport: s.cfg.Now().UTC(), DriftSummary: raw}
	if err := catalog.CheckHost(h); err != nil {
		s.reject(w, RejectInvalid, http.StatusBadRequest, "%v", err)
		return
	}
	// the credential is checked, and the report acknowledged, once the
	// batch holding it has committed
	owner, err := s.queue.submit(r.Context(), catalog.AgentReport{CredentialSHA256: credentialDigest(cred), Host: h})
	switch {
	case errors.Is(err, errQueueFull):
		s.reject(w, RejectBusy, http.StatusServiceUnavailable, "too many reports waiting to be stored; retry later")
		return
	case err != nil:
		s.reject(w, RejectStore, http.StatusServiceUnavailable, "the report could not be stored; retry later")
		return
	case owner == "":
		s.reject(w, RejectUnauthorized, http.StatusUnauthorized, "unknown or revoked host credential: enrol again")
		return
	case owner != rep.Host:
		s.reject(w, RejectWrongHost, http.StatusForbidden, "this credential was issued to host %s, not %s", owner, rep.Host)
		return
	}
	s.metrics.accepted.Inc()
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "host": rep.Host})
}

func clipErr(err error) string {
	m := err.Error()
	if len(m) > 200 {
		m = m[:200] + "..."
	}
	return strings.ToValidUTF8(m, "?")
}

func (s *Server) apiAzureRefresh(w http.ResponseWriter, r *http.Request) {
	if !s.bearerOK(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imgpipe"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	if s.cfg.Azure == nil {
		writeError(w, http.StatusNotFound, "no Azure subscriptions configured: start serve with --azure-subscription")
		return
	}
	res, err := s.PullAzure(r.Context())
	if err != nil {
		writeError(w, http.StatusBadGateway, "azure pull: %s", clipErr(err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}
