package server

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"imgpipe/internal/catalog"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticRoot embed.FS

// staticFS serves /static/... from the embedded static directory.
var staticFS = func() fs.FS { return staticRoot }()

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"ago":  ago,
	"when": when,
	"statuses": func() []string {
		return []string{"revoked", "error", "drifted", "behind", "unknown", "stale", "no-agent", "ok"}
	},
	"fleetURL": func(image, version, state string) string {
		return fleetURL(catalog.FleetFilter{Image: image, Version: version}, state)
	},
	"fleetRows":      fleetRows,
	"fleetRegionURL": func(region string) string { return fleetURL(catalog.FleetFilter{Region: region}, "") },
	"imageURL":       imageURL,
	"add":            func(a, b int) int { return a + b },
	"versionURL":     versionURL,
	"hostURL":        hostURL,
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n] + "…"
	},
	"dash": func(s string) string {
		if s == "" {
			return "–"
		}
		return s
	},
}).ParseFS(templateFS, "templates/*.html"))

type fleetPage struct {
	page
	Channel string
	Hosts   []fleetRow
	Counts  map[string]int // hosts matching the filter but its state, by state
	All     int            // their sum
	Total   int            // hosts in the fleet
	Matched int            // hosts matching the filter
	Q       fleetQuery
	Prev    string // URLs of the neighbouring pages ("" at the ends)
	Next    string
	Now     time.Time
	Drift   *areaChart // the fleet's drift over the last day
}

// fleetRow is a row of the triage page, flat, with its links and times
// drawn here: a page has 50 rows, and the template's lookups of fields
// through embedded structs and its function calls cost more than the
// database's part of the page (measured at 100k hosts).
type fleetRow struct {
	Name, Platform, Region, Image, Version, ChannelVersion, Status string
	VersionsBehind                                                 int
	Revoked                                                        bool
	HostURL, ImageURL, VersionURL, RegionURL                       string
	Seen, SeenAt                                                   string // how long ago, and when (RFC 3339)
	// Drift counts: files added, removed, changed, packages and services
	// (Counted false: none reported, NoCount says why)
	Counted                 bool
	Added, Removed, Changed int
	Packages                int
	NoCount                 string
}

func (q fleetQuery) rowOf(h HostRow) fleetRow {
	r := fleetRow{Name: h.Name, Platform: h.Platform, Region: h.Region, Image: h.Image, Version: h.Version, ChannelVersion: h.ChannelVersion,
		Status: h.Status, VersionsBehind: h.VersionsBehind, Revoked: h.Revoked,
		HostURL: hostURL(h.Name), Seen: ago(h.LastSeen), SeenAt: when(h.LastSeen), NoCount: "–"}
	if h.Image != "" {
		r.ImageURL = q.With("image", h.Image).URL()
		if h.Version != "" && !h.Unknown {
			r.VersionURL = versionURL(h.Image, h.Version)
		}
	}
	if h.Region != "" {
		r.RegionURL = q.With("region", h.Region).URL()
	}
	switch sum := h.State.Summary; {
	case sum != nil:
		r.Counted, r.Added, r.Removed, r.Changed, r.Packages = true, sum.FilesAdded, sum.FilesRemoved, sum.FilesChanged, sum.Packages+sum.Services
	case h.State.Source == SourceAzure:
		r.NoCount = "no agent"
	case h.State.Error != "":
		r.NoCount = "check failed"
	}
	return r
}

// fleetRows draws the rows of the triage table. Every value is escaped
// (html.EscapeString: text and quoted attributes), and every link is one
// of ours (a path built with url.PathEscape, a query with url.Values).
// Drawn here rather than by the template: 50 rows of 13 cells each were
// most of the page's time under load.
func fleetRows(rows []fleetRow) template.HTML {
	var b strings.Builder
	e := html.EscapeString
	w := func(ss ...string) {
		for _, s := range ss {
			b.WriteString(s)
		}
	}
	link := func(class, href, title, text string) {
		w(`<td class="`, class, `">`)
		switch {
		case href != "" && title != "":
			w(`<a href="`, e(href), `" title="`, e(title), `">`, e(text), `</a>`)
		case href != "":
			w(`<a href="`, e(href), `">`, e(text), `</a>`)
		case text != "":
			w(e(text))
		default:
			w("–")
		}
		w("</td>\n")
	}
	for _, r := range rows {
		st := e(r.Status)
		w(`<tr class="st-`, st, `" data-host="`, e(r.Name), `">`, "\n")
		link("host", r.HostURL, "", r.Name)
		w(`<td>`, e(r.Platform), "</td>\n")
		link("host-region", r.RegionURL, "only hosts in "+r.Region, r.Region)
		link("image", r.ImageURL, "only hosts of "+r.Image, r.Image)
		link("version", r.VersionURL, "", r.Version)
		link("channel", "", "", r.ChannelVersion)
		w(`<td class="num behind">`, strconv.Itoa(r.VersionsBehind), "</td>\n")
		if r.Revoked {
			w(`<td class="revoked">yes</td>`, "\n")
		} else {
			w(`<td class="revoked">no</td>`, "\n")
		}
		if r.Counted {
			for _, n := range []int{r.Added, r.Removed, r.Changed, r.Packages} {
				w(`<td class="num">`, strconv.Itoa(n), "</td>")
			}
			w("\n")
		} else {
			w(`<td class="num na" colspan="4">`, e(r.NoCount), "</td>\n")
		}
		w(`<td title="`, e(r.SeenAt), `">`, e(r.Seen), "</td>\n")
		w(`<td><span class="badge st-`, st, `">`, st, "</span></td>\n</tr>\n")
	}
	return template.HTML(b.String())
}

// PageSize is the number of hosts on a dashboard page.
const PageSize = 50

// ago says how long ago t was, for people.
func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t).Round(time.Second)
	switch {
	case d < time.Minute:
		return d.String() + " ago"
	case d < time.Hour:
		return d.Round(time.Minute).String() + " ago"
	case d < 48*time.Hour:
		return d.Round(time.Hour).String() + " ago"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// when is t in RFC 3339 ("" for the zero time).
func when(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// fleetQuery is the fleet page's URL: a catalog filter and the channel
// hosts are measured against ("" is the server's).
type fleetQuery struct {
	catalog.FleetFilter
	Channel string
}

// URL is the dashboard URL of the query (empty fields left out).
func (q fleetQuery) URL() string {
	v := url.Values{}
	for k, val := range map[string]string{"state": q.State, "image": q.Image, "version": q.Version, "platform": q.Platform,
		"region": q.Region, "q": q.Search, "channel": q.Channel, "after": q.After.String(), "before": q.Before.String()} {
		if val != "" {
			v.Set(k, val)
		}
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

// With returns the query with one field changed, from its first page.
func (q fleetQuery) With(key, val string) fleetQuery {
	q.After, q.Before = catalog.FleetCursor{}, catalog.FleetCursor{}
	switch key {
	case "state":
		q.State = val
	case "image":
		q.Image = val
	case "version":
		q.Version = val
	case "platform":
		q.Platform = val
	case "region":
		q.Region = val
	case "q":
		q.Search = val
	case "channel":
		q.Channel = val
	}
	return q
}

// at returns the query's page after (or, with before, ending before) cur.
func (q fleetQuery) at(cur catalog.FleetCursor, before bool) fleetQuery {
	q.After, q.Before = catalog.FleetCursor{}, catalog.FleetCursor{}
	if before {
		q.Before = cur
	} else {
		q.After = cur
	}
	return q
}

// fleetURL is the dashboard URL of a filter's first page (state "" left out).
func fleetURL(f catalog.FleetFilter, state string) string {
	f.State, f.After, f.Before = state, catalog.FleetCursor{}, catalog.FleetCursor{}
	return fleetQuery{FleetFilter: f}.URL()
}

// page is what every page's layout shows: its title, how often it
// reloads, and who is signed in.
type page struct {
	Title   string
	Refresh int    // seconds between reloads of the page
	User    string // the signed-in person or token ("" when open)
	SignOut bool   // the user has a browser session to end
}

func (p *page) base() *page { return p }

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	s.renderStatus(w, r, http.StatusOK, name, data)
}

func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	id := identityOf(r)
	switch d := data.(type) {
	case interface{ base() *page }:
		d.base().User, d.base().SignOut = id.Name, id.Session
	case map[string]any:
		d["User"], d["SignOut"] = id.Name, id.Session
	}
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		slog.Error("render", "page", name, "err", err)
		http.Error(w, "page could not be rendered (see the server log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Server) pageError(w http.ResponseWriter, r *http.Request, err error) {
	status := http.StatusInternalServerError
	msg := "catalog error (see the server log)"
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, catalog.ErrInvalid):
		status, msg = http.StatusBadRequest, err.Error()
	default:
		slog.Error("dashboard", "err", err)
	}
	s.renderStatus(w, r, status, "error.html", map[string]any{"Title": "error", "Status": status, "Message": msg})
}

// pageFleet is the triage page: worst state first, filters and search in
// the URL, PageSize hosts a page (after= / before= a cursor), a summary
// whose counts link to filters.
func (s *Server) pageFleet(w http.ResponseWriter, r *http.Request) {
	f, err := fleetFilter(r, PageSize)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	f.Limit = PageSize
	q := fleetQuery{FleetFilter: f, Channel: r.URL.Query().Get("channel")}
	channel := s.cfg.Channel
	if q.Channel != "" {
		if len(q.Channel) > 64 {
			s.pageError(w, r, fmt.Errorf("%w: channel is longer than 64 characters", catalog.ErrInvalid))
			return
		}
		channel = q.Channel
	}
	rows, fp, err := s.fleet(r, channel, f)
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p := fleetPage{page: page{Title: "fleet", Refresh: 60}, Channel: channel, Counts: fp.ByState, Total: fp.Fleet,
		Matched: fp.Total, Q: q, Now: s.cfg.Now()}
	p.Hosts = make([]fleetRow, len(rows))
	for i, h := range rows {
		p.Hosts[i] = q.rowOf(h)
	}
	for _, n := range p.Counts {
		p.All += n
	}
	// drift over the last day, from the snapshots (a few rows each)
	points, err := s.series.series(r.Context(), s.cfg.Catalog, "", s.cfg.Now().Add(-24*time.Hour))
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	p.Drift = driftChart(points)
	if !fp.Prev.IsZero() {
		p.Prev = q.at(fp.Prev, true).URL()
	}
	if !fp.Next.IsZero() {
		p.Next = q.at(fp.Next, false).URL()
	}
	s.render(w, r, "fleet.html", &p)
}

func (s *Server) pageImages(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.cfg.Catalog.Images(r.Context())
	if err != nil {
		s.pageError(w, r, err)
		return
	}
	var list []*ImageVersions
	for _, img := range imgs {
		iv, err := s.imageVersions(r, img.Name)
		if err != nil {
			s.pageError(w, r, err)
			return
		}
		list = append(list, iv)
	}
	s.render(w, r, "images.html", map[string]any{"Title": "images", "Images": list, "Channel": s.cfg.Channel,
		"Chart": versionsChart(s.cfg.Channel, list...)})
}
