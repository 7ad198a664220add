package server

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"imgpipe/internal/catalog"
)

// Charts are drawn on the server as inline SVG: geometry computed here,
// markup in templates/charts.html, colours in the stylesheet (by class, so
// the page's Content-Security-Policy needs no inline styles).

// barChart is rows of stacked horizontal bars.
type barChart struct {
	Width, Height int
	LabelWidth    int
	Rows          []barRow
	Legend        []legendItem
}

type barRow struct {
	Label, Href string
	Y           int
	Total       int
	TextX       int // where the total is written
	Segs        []barSeg
}

type barSeg struct {
	X, Y, W        int
	Class          string
	Title, Href    string
	Label          string // drawn inside when it fits
	LabelX, LabelY int
}

type legendItem struct{ Class, Label string }

const (
	chartWidth  = 720
	chartLabelW = 120
	chartBarH   = 22
	chartGap    = 8
)

// versionClass is how a version stands against a channel's version:
// current (the channel's), behind (older), ahead (newer), revoked, or
// unknown (no channel).
func versionClass(v VersionRow, channelVersion string) string {
	switch {
	case v.Status == catalog.StatusRevoked:
		return "revoked"
	case channelVersion == "":
		return "unknown"
	case v.Version == channelVersion:
		return "current"
	case catalog.CompareVersions(v.Version, channelVersion) < 0:
		return "behind"
	}
	return "ahead"
}

var versionLegend = []legendItem{{"current", "channel's version"}, {"behind", "older"}, {"ahead", "newer"}, {"revoked", "revoked"}, {"unknown", "no channel version"}}

func channelVersion(iv *ImageVersions, channel string) string {
	for _, c := range iv.Channels {
		if c.Name == channel {
			return c.Version
		}
	}
	return ""
}

// versionsChart draws the hosts running each version of one or more
// images, one bar per image, a segment per version (linked to the fleet
// filtered to it). Nil when no host runs any.
func versionsChart(channel string, images ...*ImageVersions) *barChart {
	c := &barChart{Width: chartWidth, LabelWidth: chartLabelW}
	most := 0
	for _, iv := range images {
		n := 0
		for _, v := range iv.Versions {
			n += v.Hosts
		}
		most = max(most, n)
	}
	if most == 0 {
		return nil
	}
	barW := chartWidth - chartLabelW - 60
	used := map[string]bool{}
	y := 0
	for _, iv := range images {
		cv := channelVersion(iv, channel)
		row := barRow{Label: iv.Image, Href: imageURL(iv.Image), Y: y}
		vs := slices.Clone(iv.Versions)
		slices.SortFunc(vs, func(a, b VersionRow) int { return catalog.CompareVersions(a.Version, b.Version) })
		x := chartLabelW
		for _, v := range vs {
			if v.Hosts == 0 {
				continue
			}
			w := int(math.Round(float64(v.Hosts) * float64(barW) / float64(most)))
			w = max(w, 2)
			cls := versionClass(v, cv)
			used[cls] = true
			seg := barSeg{X: x, Y: y, W: w, Class: "seg-" + cls, Href: fleetURL(catalog.FleetFilter{Image: iv.Image, Version: v.Version}, ""),
				Title: fmt.Sprintf("%s %s: %d host(s) (%s)", iv.Image, v.Version, v.Hosts, cls)}
			if w >= 7*len(v.Version)+8 {
				seg.Label, seg.LabelX, seg.LabelY = v.Version, x+w/2, y+chartBarH/2+4
			}
			row.Segs = append(row.Segs, seg)
			row.Total += v.Hosts
			x += w
		}
		row.TextX = x + 6
		c.Rows = append(c.Rows, row)
		y += chartBarH + chartGap
	}
	c.Height = y
	for _, l := range versionLegend {
		if used[l.Class] {
			c.Legend = append(c.Legend, legendItem{"seg-" + l.Class, l.Label})
		}
	}
	return c
}

// areaChart is series stacked over time (drawn as areas, bottom first).
type areaChart struct {
	Width, Height int
	Left, Top     int // the plot's origin
	PlotW, PlotH  int
	Areas         []area
	YMax          int
	XLabels       []axisLabel
	Legend        []legendItem
	Caption       string
}

type area struct {
	Class, Label, D string
}

type axisLabel struct {
	X      int
	Text   string
	Anchor string
}

// series is one stacked quantity of an areaChart.
type series struct {
	Class, Label string
	Values       []int
}

// maxPoints bounds the points drawn: buckets of neighbouring snapshots
// keep their last value.
const maxPoints = 240

// newAreaChart stacks series (same length as at) over time.
func newAreaChart(at []time.Time, ss []series, caption string) *areaChart {
	if len(at) < 2 {
		return nil
	}
	// thin out to at most maxPoints
	if n := len(at); n > maxPoints {
		step := (n + maxPoints - 1) / maxPoints
		var keep []int
		for i := step - 1; i < n; i += step {
			keep = append(keep, i)
		}
		if keep[len(keep)-1] != n-1 {
			keep = append(keep, n-1)
		}
		at2 := make([]time.Time, len(keep))
		for j, i := range keep {
			at2[j] = at[i]
		}
		for k := range ss {
			v := make([]int, len(keep))
			for j, i := range keep {
				v[j] = ss[k].Values[i]
			}
			ss[k].Values = v
		}
		at = at2
	}
	c := &areaChart{Width: chartWidth, Height: 180, Left: 44, Top: 8, Caption: caption}
	c.PlotW, c.PlotH = c.Width-c.Left-12, c.Height-c.Top-24
	tot := make([]int, len(at))
	for _, s := range ss {
		for i, v := range s.Values {
			tot[i] += v
		}
	}
	c.YMax = max(slices.Max(tot), 1)
	t0, t1 := at[0], at[len(at)-1]
	span := t1.Sub(t0)
	if span <= 0 {
		return nil
	}
	x := func(t time.Time) float64 {
		return float64(c.Left) + float64(t.Sub(t0))/float64(span)*float64(c.PlotW)
	}
	y := func(v int) float64 { return float64(c.Top+c.PlotH) - float64(v)/float64(c.YMax)*float64(c.PlotH) }
	low := make([]int, len(at))
	for _, s := range ss {
		high := make([]int, len(at))
		for i := range at {
			high[i] = low[i] + s.Values[i]
		}
		if slices.Max(s.Values) > 0 {
			var b strings.Builder
			for i := range at {
				cmd := "L"
				if i == 0 {
					cmd = "M"
				}
				fmt.Fprintf(&b, "%s%.1f,%.1f ", cmd, x(at[i]), y(high[i]))
			}
			for i := len(at) - 1; i >= 0; i-- {
				fmt.Fprintf(&b, "L%.1f,%.1f ", x(at[i]), y(low[i]))
			}
			b.WriteString("Z")
			c.Areas = append(c.Areas, area{Class: s.Class, Label: s.Label, D: b.String()})
			c.Legend = append(c.Legend, legendItem{s.Class, s.Label})
		}
		low = high
	}
	layout := "15:04"
	if span > 36*time.Hour {
		layout = "Jan 2"
	}
	c.XLabels = []axisLabel{{c.Left, t0.UTC().Format(layout), "start"}, {c.Left + c.PlotW/2, t0.Add(span / 2).UTC().Format(layout), "middle"},
		{c.Left + c.PlotW, t1.UTC().Format(layout) + " UTC", "end"}}
	return c
}

// seriesCache keeps the fleet snapshots a replica has read (FleetSeries),
// by image ("" the whole fleet): a snapshot instant is written once and
// never changes, so a page reads again only the last seriesReread of
// them (which also picks up a snapshot a replica with a lagging clock
// wrote late), not a day or a week of them each time. Every replica still
// shows what the catalog holds.
type seriesCache struct {
	mu sync.Mutex
	m  map[string]cachedSeries
}

type cachedSeries struct {
	from   time.Time // the points since from are all held
	points []catalog.FleetPoint
}

// seriesReread is how far back a cached series is read again.
const seriesReread = 30 * time.Minute

// series returns cat.FleetSeries(ctx, image, since), reading only the
// recent snapshots when it holds the rest.
func (c *seriesCache) series(ctx context.Context, cat *catalog.Catalog, image string, since time.Time) ([]catalog.FleetPoint, error) {
	c.mu.Lock()
	e, ok := c.m[image]
	c.mu.Unlock()
	var points []catalog.FleetPoint
	if !ok || since.Before(e.from) || len(e.points) == 0 {
		fresh, err := cat.FleetSeries(ctx, image, since)
		if err != nil {
			return nil, err
		}
		points = fresh
	} else {
		cut := e.points[len(e.points)-1].At.Add(-seriesReread)
		if cut.Before(since) {
			cut = since
		}
		fresh, err := cat.FleetSeries(ctx, image, cut)
		if err != nil {
			return nil, err
		}
		for _, p := range e.points { // a new slice: the cached one is shared
			if !p.At.Before(since) && p.At.Before(cut) {
				points = append(points, p)
			}
		}
		points = append(points, fresh...)
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= 256 { // bounded: image names come from URLs
		c.m = map[string]cachedSeries{}
	}
	c.m[image] = cachedSeries{from: since, points: points}
	c.mu.Unlock()
	return points, nil
}

// driftChart draws drifted (and failed) hosts against the clean rest over
// the snapshots.
func driftChart(points []catalog.FleetPoint) *areaChart {
	if len(points) < 2 {
		return nil
	}
	at := make([]time.Time, len(points))
	drifted, failed, clean := series{"seg-revoked", "drifted", nil}, series{"seg-behind", "check failed", nil}, series{"seg-clean", "no drift", nil}
	for i, p := range points {
		at[i] = p.At
		// a host can be both; count it as drifted
		f := min(max(p.Failed, 0), max(p.Hosts-p.Drifted, 0))
		drifted.Values = append(drifted.Values, p.Drifted)
		failed.Values = append(failed.Values, f)
		clean.Values = append(clean.Values, max(p.Hosts-p.Drifted-f, 0))
	}
	last := points[len(points)-1]
	return newAreaChart(at, []series{drifted, failed, clean}, fmt.Sprintf("now %d drifted of %d hosts", last.Drifted, last.Hosts))
}

// versionsOverTime draws an image's hosts by version over the snapshots.
func versionsOverTime(iv *ImageVersions, channel string, points []catalog.FleetPoint) *areaChart {
	if len(points) < 2 {
		return nil
	}
	cv := channelVersion(iv, channel)
	status := map[string]VersionRow{}
	for _, v := range iv.Versions {
		status[v.Version] = v
	}
	var names []string
	for _, p := range points {
		for v := range p.Versions {
			if !slices.Contains(names, v) {
				names = append(names, v)
			}
		}
	}
	slices.SortFunc(names, catalog.CompareVersions)
	at := make([]time.Time, len(points))
	for i, p := range points {
		at[i] = p.At
	}
	var ss []series
	for _, n := range names {
		row, ok := status[n]
		if !ok {
			row = VersionRow{Version: n}
		}
		cls := "unknown"
		if ok {
			cls = versionClass(row, cv)
		}
		s := series{Class: "seg-" + cls, Label: n}
		for _, p := range points {
			s.Values = append(s.Values, p.Versions[n])
		}
		ss = append(ss, s)
	}
	return newAreaChart(at, ss, "")
}
