package config

// rebuild { ... } blocks: when imgpipe reconcile rebuilds an image from
// source (drift in the fleet, a revoked version, a newer parent, a schedule)
// and what holds it back (cool-down, daily cap). Read by parseRebuilds, a
// hook Parse calls before decoding the rest of the file, like parseTests.

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/robfig/cron/v3"
)

// Rebuild is the rebuild policy of one image.
type Rebuild struct {
	Image   string   // the image block it applies to
	OnDrift *OnDrift // nil: drift does not trigger a rebuild
	// OnRevoke: rebuild when the version the promote_to channel points at is revoked.
	OnRevoke bool
	// OnParent: rebuild when the parent image has an active version newer
	// than the one the current version was built on.
	OnParent bool
	// Schedule is a standard 5-field cron expression (UTC), "" for none.
	Schedule     string
	ScheduleSpec cron.Schedule
	// Cooldown is the least time between two rebuilds of the image (default 6h).
	Cooldown time.Duration
	// MaxPerDay caps the rebuilds started per UTC day (default 2).
	MaxPerDay int
	// PromoteTo is the channel a tested rebuild is promoted to (default "prod").
	PromoteTo string
	Range     hcl.Range
}

// OnDrift says how much drift, for how long, triggers a rebuild.
type OnDrift struct {
	// Hosts is the number of drifted hosts that triggers (0: use Share).
	Hosts int
	// Share is the share (0 < share <= 1) of the channel's hosts that triggers (0: use Hosts).
	Share float64
	// Channel whose hosts are counted (default: the policy's promote_to).
	Channel string
	// For is how long the threshold must hold (0: at once).
	For time.Duration
	// ChangedFiles: a host counts only when at least this many files were
	// added, removed or changed beyond the baseline's ignore rules (0: any drift).
	ChangedFiles int
	// Packages: a host also counts when any package changed.
	Packages bool
}

const (
	defaultCooldown  = 6 * time.Hour
	defaultMaxPerDay = 2
	defaultPromoteTo = "prod"
)

// cronParser reads standard 5-field cron expressions and @daily-style descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

type rawRebuild struct {
	Image     *string      `hcl:"image"`
	OnDrift   []rawOnDrift `hcl:"on_drift,block"`
	OnRevoke  *bool        `hcl:"on_revoke"`
	OnParent  *bool        `hcl:"on_parent"`
	Schedule  *string      `hcl:"schedule"`
	Cooldown  *string      `hcl:"cooldown"`
	MaxPerDay *int         `hcl:"max_per_day"`
	PromoteTo *string      `hcl:"promote_to"`
	Body      hcl.Body     `hcl:",body"`
	DefRange  hcl.Range
}

type rawOnDrift struct {
	Hosts        *int      `hcl:"hosts"`
	Share        *float64  `hcl:"share"`
	Channel      *string   `hcl:"channel"`
	For          *string   `hcl:"for"`
	ChangedFiles *int      `hcl:"changed_files"`
	Packages     *bool     `hcl:"packages"`
	Body         hcl.Body  `hcl:",body"`
	DefRange     hcl.Range `hcl:",def_range"`
}

var rebuildSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "rebuild"}}}

// parseRebuilds takes the rebuild blocks out of body and returns them with
// the rest of the body.
func parseRebuilds(body hcl.Body) ([]rawRebuild, hcl.Body, hcl.Diagnostics) {
	content, rest, diags := body.PartialContent(rebuildSchema)
	var out []rawRebuild
	for _, b := range content.Blocks {
		var r rawRebuild
		diags = append(diags, gohcl.DecodeBody(b.Body, nil, &r)...)
		r.DefRange = b.DefRange
		out = append(out, r)
	}
	return out, rest, diags
}

// rebuilds validates the rebuild blocks against the file's images.
func (v *validator) rebuilds(raw []rawRebuild, f *File) []Rebuild {
	var out []Rebuild
	seen := map[string]bool{}
	for _, r := range raw {
		rb := Rebuild{Cooldown: defaultCooldown, MaxPerDay: defaultMaxPerDay, PromoteTo: defaultPromoteTo, Range: r.DefRange}
		rb.Image = v.imageOf(f, r.Image, r.Body, r.DefRange, "rebuild")
		if rb.Image != "" {
			if seen[rb.Image] {
				v.errf(r.DefRange, "duplicate rebuild block", "image %q has two rebuild blocks; keep one", rb.Image)
			}
			seen[rb.Image] = true
		}
		if r.PromoteTo != nil {
			rb.PromoteTo = *r.PromoteTo
			if !nameRE.MatchString(rb.PromoteTo) {
				v.errf(attrRange(r.Body, "promote_to", r.DefRange), "invalid promote_to", "%q is not a channel name (letters, digits, . _ -)", rb.PromoteTo)
			}
		}
		if r.OnRevoke != nil {
			rb.OnRevoke = *r.OnRevoke
		}
		if r.OnParent != nil {
			rb.OnParent = *r.OnParent
		}
		if r.Schedule != nil {
			rb.Schedule = *r.Schedule
			s, err := cronParser.Parse(rb.Schedule)
			if err != nil {
				v.errf(attrRange(r.Body, "schedule", r.DefRange), "invalid schedule",
					"%q: %v; use five cron fields in UTC, minute hour day-of-month month day-of-week, e.g. \"0 3 * * 1\" (Mondays 03:00)", rb.Schedule, err)
			}
			rb.ScheduleSpec = s
		}
		if r.Cooldown != nil {
			d, err := ParseDuration(*r.Cooldown)
			if err != nil || d < 0 {
				v.errf(attrRange(r.Body, "cooldown", r.DefRange), "invalid cooldown", "%q: use a duration such as \"6h\" or \"1d\"", *r.Cooldown)
			}
			rb.Cooldown = d
		}
		if r.MaxPerDay != nil {
			rb.MaxPerDay = *r.MaxPerDay
			if rb.MaxPerDay < 1 || rb.MaxPerDay > 100 {
				v.errf(attrRange(r.Body, "max_per_day", r.DefRange), "invalid max_per_day", "%d: use 1 to 100 rebuilds a day", rb.MaxPerDay)
			}
		}
		if len(r.OnDrift) > 1 {
			v.errf(r.OnDrift[1].DefRange, "duplicate on_drift block", "a rebuild block takes one on_drift block")
		}
		if len(r.OnDrift) > 0 {
			rb.OnDrift = v.onDrift(&r.OnDrift[0], rb.PromoteTo)
		}
		if rb.OnDrift == nil && !rb.OnRevoke && !rb.OnParent && rb.Schedule == "" {
			v.errf(r.DefRange, "rebuild never triggers",
				"the rebuild block has no trigger; add on_drift { ... }, on_revoke = true, on_parent = true or schedule = \"0 3 * * 1\"")
		}
		out = append(out, rb)
	}
	return out
}

func (v *validator) onDrift(r *rawOnDrift, promoteTo string) *OnDrift {
	d := &OnDrift{Channel: promoteTo}
	switch {
	case r.Hosts != nil && r.Share != nil:
		v.errf(attrRange(r.Body, "share", r.DefRange), "hosts and share", "on_drift takes hosts = N or share = 0.3, not both")
	case r.Hosts != nil:
		d.Hosts = *r.Hosts
		if d.Hosts < 1 {
			v.errf(attrRange(r.Body, "hosts", r.DefRange), "invalid hosts", "%d: the number of drifted hosts that triggers a rebuild must be at least 1", d.Hosts)
		}
	case r.Share != nil:
		d.Share = *r.Share
		if !(d.Share > 0 && d.Share <= 1) {
			v.errf(attrRange(r.Body, "share", r.DefRange), "invalid share", "%v: the share of the channel's hosts must be above 0 and at most 1 (0.3 is 30%%)", d.Share)
		}
	default:
		v.errf(r.DefRange, "how much drift", "on_drift needs hosts = N (drifted hosts) or share = 0.3 (of the channel's hosts)")
	}
	if r.Channel != nil {
		d.Channel = *r.Channel
		if !nameRE.MatchString(d.Channel) {
			v.errf(attrRange(r.Body, "channel", r.DefRange), "invalid channel", "%q is not a channel name (letters, digits, . _ -)", d.Channel)
		}
	}
	if r.For != nil {
		dur, err := ParseDuration(*r.For)
		if err != nil || dur < 0 {
			v.errf(attrRange(r.Body, "for", r.DefRange), "invalid for", "%q: use a duration such as \"2h\" or \"1d\"", *r.For)
		}
		d.For = dur
	}
	if r.ChangedFiles != nil {
		d.ChangedFiles = *r.ChangedFiles
		if d.ChangedFiles < 0 {
			v.errf(attrRange(r.Body, "changed_files", r.DefRange), "invalid changed_files", "%d: use 0 (any drift) or more", d.ChangedFiles)
		}
	}
	if r.Packages != nil {
		d.Packages = *r.Packages
	}
	return d
}

// Rebuild returns the rebuild policy of image, or nil.
func (f *File) Rebuild(image string) *Rebuild {
	for i := range f.Rebuilds {
		if f.Rebuilds[i].Image == image {
			return &f.Rebuilds[i]
		}
	}
	return nil
}

// String describes the drift threshold ("12 hosts", "30% of prod hosts").
func (d *OnDrift) String() string {
	if d.Hosts > 0 {
		return fmt.Sprintf("%d %s hosts", d.Hosts, d.Channel)
	}
	return fmt.Sprintf("%g%% of %s hosts", d.Share*100, d.Channel)
}
