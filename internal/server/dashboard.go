package server

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
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
	"ago": func(t time.Time) string {
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
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"statuses": func() []string {
		return []string{"revoked", "error", "drifted", "behind", "unknown", "stale", "no-agent", "ok"}
	},
	"filterURL": func(f catalog.FleetFilter, state string) string { return fleetURL(f, state, 0) },
	"image":     func(f catalog.FleetFilter, image string) catalog.FleetFilter { f.Image = image; return f },
	"dash": func(s string) string {
		if s == "" {
			return "–"
		}
		return s
	},
}).ParseFS(templateFS, "templates/*.html"))

type fleetPage struct {
	Title   string
	Refresh int // seconds between reloads of the page
	Channel string
	Hosts   []HostRow
	Counts  map[string]int
	Total   int // hosts in the fleet
	Matched int // hosts matching the filter
	Filter  catalog.FleetFilter
	First   int // 1-based index of the first row shown
	Last    int
	Prev    string // URLs of the neighbouring pages ("" at the ends)
	Next    string
	Now     time.Time
}

// PageSize is the number of hosts on a dashboard page.
const PageSize = 50

// fleetURL is the dashboard URL of a filter (state "" and offset 0 left out).
func fleetURL(f catalog.FleetFilter, state string, offset int) string {
	q := url.Values{}
	for k, v := range map[string]string{"state": state, "image": f.Image, "version": f.Version, "platform": f.Platform, "q": f.Search} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if offset > 0 {
		q.Set("offset", strconv.Itoa(offset))
	}
	if len(q) == 0 {
		return "/"
	}
	return "/?" + q.Encode()
}

func (s *Server) render(w http.ResponseWriter, name string, data any) {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, name, data); err != nil {
		slog.Error("render", "page", name, "err", err)
		http.Error(w, "page could not be rendered (see the server log)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

func (s *Server) pageError(w http.ResponseWriter, err error) {
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
	w.WriteHeader(status)
	s.render(w, "error.html", map[string]any{"Title": "error", "Status": status, "Message": msg})
}

// pageFleet is the triage page: worst state first, filters and search in
// the URL, PageSize hosts a page, a summary whose counts link to filters.
func (s *Server) pageFleet(w http.ResponseWriter, r *http.Request) {
	f, err := fleetFilter(r, PageSize)
	if err != nil {
		s.pageError(w, err)
		return
	}
	f.Limit = PageSize
	rows, matched, err := s.fleet(r, f)
	if err != nil {
		s.pageError(w, err)
		return
	}
	sum, err := s.cfg.Catalog.FleetSummary(r.Context(), s.cfg.Channel, s.staleBefore())
	if err != nil {
		s.pageError(w, err)
		return
	}
	p := fleetPage{Title: "fleet", Refresh: 60, Channel: s.cfg.Channel, Hosts: rows, Counts: sum.ByState, Total: sum.Total,
		Matched: matched, Filter: f, First: f.Offset + 1, Last: f.Offset + len(rows), Now: s.cfg.Now()}
	if f.Offset > 0 {
		p.Prev = fleetURL(f, f.State, max(f.Offset-PageSize, 0))
	}
	if f.Offset+len(rows) < matched {
		p.Next = fleetURL(f, f.State, f.Offset+PageSize)
	}
	s.render(w, "fleet.html", p)
}

func (s *Server) pageImages(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.cfg.Catalog.Images(r.Context())
	if err != nil {
		s.pageError(w, err)
		return
	}
	var list []*ImageVersions
	for _, img := range imgs {
		iv, err := s.imageVersions(r, img.Name)
		if err != nil {
			s.pageError(w, err)
			return
		}
		list = append(list, iv)
	}
	s.render(w, "images.html", map[string]any{"Title": "images", "Images": list})
}

func (s *Server) pageHost(w http.ResponseWriter, r *http.Request) {
	h, err := s.host(r, r.PathValue("name"))
	if err != nil {
		s.pageError(w, err)
		return
	}
	s.render(w, "host.html", map[string]any{"Title": h.Name, "Host": h, "Channel": s.cfg.Channel})
}
