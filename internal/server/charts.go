package server

import (
	"fmt"
	"math"
	"slices"

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
			seg := barSeg{X: x, Y: y, W: w, Class: "seg-" + cls, Href: fleetURL(catalog.FleetFilter{Image: iv.Image, Version: v.Version}, "", 0),
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
