package config

// channel "NAME" { requires = [...] } blocks: what a version needs before a
// channel of an image may point at it. Without a block for a channel the
// catalog's requirements apply (prod: a Succeeded gallery version and a
// passing test of the version's exact artifact digest). Read by
// parseChannels, a hook Parse calls before decoding the rest of the file,
// like parseTests.

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// Channel declares the requirements of one channel.
type Channel struct {
	Name string
	// Image is the image block it applies to ("" : every image of the file).
	Image string
	// Requires lists what a version needs: a copy kind (optionally with the
	// state it must be in, "gallery_version:Succeeded") or "tested". An empty
	// list requires nothing.
	Requires []ChannelRequirement
	Range    hcl.Range
}

// ChannelRequirement is one entry of a channel's requires list.
type ChannelRequirement struct {
	Kind  string // a copy kind or "tested"
	State string // "" : any state but Failed, Deleted and Revoked
}

// String renders the requirement as it is written in the file.
func (r ChannelRequirement) String() string {
	if r.State == "" {
		return r.Kind
	}
	return r.Kind + ":" + r.State
}

// RequirementKinds are the kinds a requires list may name: the catalog's copy
// kinds and "tested" (a passing test run of the version's artifact digest).
var RequirementKinds = []string{"artifact", "onprem", "blob", "managed_disk", "managed_image", "gallery_version", "region", "tested"}

type rawChannel struct {
	Name     string    `hcl:"name,label"`
	Image    *string   `hcl:"image"`
	Requires []string  `hcl:"requires"`
	Body     hcl.Body  `hcl:",body"`
	DefRange hcl.Range `hcl:",def_range"`
}

var channelsSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "channel", LabelNames: []string{"name"}}}}

// parseChannels takes the channel blocks out of body and returns them with
// the rest of the body.
func parseChannels(body hcl.Body) ([]rawChannel, hcl.Body, hcl.Diagnostics) {
	content, rest, diags := body.PartialContent(channelsSchema)
	var out []rawChannel
	for _, b := range content.Blocks {
		var rc rawChannel
		diags = append(diags, gohcl.DecodeBody(b.Body, nil, &rc)...)
		rc.Name, rc.DefRange = b.Labels[0], b.DefRange
		out = append(out, rc)
	}
	return out, rest, diags
}

// channels validates the channel blocks against the file's images.
func (v *validator) channels(raw []rawChannel, f *File) []Channel {
	var out []Channel
	seen := map[string]bool{}
	for _, r := range raw {
		ch := Channel{Name: r.Name, Image: str(r.Image), Range: r.DefRange, Requires: []ChannelRequirement{}}
		if !nameRE.MatchString(r.Name) {
			v.errf(r.DefRange, "invalid channel name", "%q: use 1-80 letters, digits, '.', '_' or '-'", r.Name)
		}
		if ch.Image != "" && f.Image(ch.Image) == nil {
			v.errf(attrRange(r.Body, "image", r.DefRange), "unknown image", "channel %q names image %q, which no image block declares", r.Name, ch.Image)
		}
		if seen[ch.Image+"/"+ch.Name] {
			v.errf(r.DefRange, "duplicate channel", "channel %q is declared twice for the same image", r.Name)
		}
		seen[ch.Image+"/"+ch.Name] = true
		kinds := map[string]bool{}
		for _, s := range r.Requires {
			kind, state, _ := strings.Cut(strings.TrimSpace(s), ":")
			if !knownRequirement(kind) || (kind == "tested" && state != "") || kinds[kind] {
				v.errf(attrRange(r.Body, "requires", r.DefRange), "invalid requirement",
					"channel %q: %q: each entry is one of %s, once, optionally with a state (\"gallery_version:Succeeded\"; not for tested)",
					r.Name, s, strings.Join(RequirementKinds, ", "))
				continue
			}
			kinds[kind] = true
			ch.Requires = append(ch.Requires, ChannelRequirement{Kind: kind, State: state})
		}
		out = append(out, ch)
	}
	return out
}

func knownRequirement(kind string) bool {
	for _, k := range RequirementKinds {
		if k == kind {
			return true
		}
	}
	return false
}

// ChannelOf returns the block that declares channel for image (a block
// naming the image wins over one for every image), or nil when the file
// declares none and the catalog's requirements apply.
func (f *File) ChannelOf(image, channel string) *Channel {
	var all *Channel
	for i := range f.Channels {
		ch := &f.Channels[i]
		if ch.Name != channel {
			continue
		}
		if ch.Image == image {
			return ch
		}
		if ch.Image == "" {
			all = ch
		}
	}
	return all
}

// Source is where the block is declared, for messages (file:line).
func (c *Channel) Source() string {
	return fmt.Sprintf("channel %q at %s:%d", c.Name, c.Range.Filename, c.Range.Start.Line)
}
