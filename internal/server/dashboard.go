package server

import (
	"bytes"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
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
	Now     time.Time
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

func (s *Server) pageFleet(w http.ResponseWriter, r *http.Request) {
	rows, err := s.Fleet(r)
	if err != nil {
		s.pageError(w, err)
		return
	}
	counts := map[string]int{}
	for _, h := range rows {
		counts[h.Status]++
	}
	s.render(w, "fleet.html", fleetPage{Title: "fleet", Refresh: 60, Channel: s.cfg.Channel, Hosts: rows, Counts: counts, Now: s.cfg.Now()})
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
