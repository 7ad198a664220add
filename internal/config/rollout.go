package config

// rollout { ... } blocks: how a promoted version reaches what runs the image
// (imgpipe rollout, and the reconciler after a promotion). Read by
// parseRollouts, a hook Parse calls before decoding the rest of the file,
// like parseTests and parseRebuilds.
//
//	rollout {
//	  image                 = "web"   # optional when the file has one image
//	  max_batch_percent     = 25      # share of a scale set upgraded at once (default 20)
//	  max_unhealthy_percent = 20      # share of upgraded instances that may be unhealthy (default 20)
//	  pause                 = "30s"   # between batches (default 0)
//	  scale_sets = ["/subscriptions/.../virtualMachineScaleSets/web"]
//	  vms        = ["/subscriptions/.../virtualMachines/db1"]
//	  hosts {
//	    channel = "prod"   # the on-prem hosts of the image that this channel moved past
//	    onprem  = "lab"    # the onprem block whose library holds the versions
//	    switch  = "LAN"    # virtual switch of the replacement VMs
//	  }
//	}

import (
	"regexp"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// Rollout is the rollout policy of one image.
type Rollout struct {
	Image string
	// MaxBatchPercent is the share of a scale set's instances upgraded in one
	// batch (5..100, default 20, as Azure's maxBatchInstancePercent).
	MaxBatchPercent int
	// MaxUnhealthyPercent is the share of upgraded instances that may be
	// unhealthy before the rollout pauses (0..100, default 20, as Azure's
	// maxUnhealthyUpgradedInstancePercent).
	MaxUnhealthyPercent int
	// Pause is the wait between two batches (default 0).
	Pause     time.Duration
	ScaleSets []string      // Azure scale set resource ids
	VMs       []string      // Azure standalone VM resource ids (replaced, not changed in place)
	Hosts     []RolloutHost // on-prem Hyper-V hosts
	Range     hcl.Range
}

// RolloutHost selects on-prem hosts: those reporting the image whose
// version is older than the one rolled out.
type RolloutHost struct {
	Channel string // the channel whose hosts these are (default "prod")
	OnPrem  string // the onprem block whose library holds the versions
	Library string // that block's library path
	Switch  string // virtual switch of the replacement VM ("" leaves it unconnected)
	// HostLibraryPath is the library as the Hyper-V hosts see it (default Library).
	HostLibraryPath string
}

// Rollout defaults, the same as Azure's rollingUpgradePolicy defaults
// (RollingUpgradePolicy in the compute REST spec).
const (
	DefaultMaxBatchPercent     = 20
	DefaultMaxUnhealthyPercent = 20
)

type rawRollout struct {
	Image               *string          `hcl:"image"`
	MaxBatchPercent     *int             `hcl:"max_batch_percent"`
	MaxUnhealthyPercent *int             `hcl:"max_unhealthy_percent"`
	Pause               *string          `hcl:"pause"`
	ScaleSets           []string         `hcl:"scale_sets,optional"`
	VMs                 []string         `hcl:"vms,optional"`
	Hosts               []rawRolloutHost `hcl:"hosts,block"`
	Body                hcl.Body         `hcl:",body"`
	DefRange            hcl.Range
}

type rawRolloutHost struct {
	Channel         *string   `hcl:"channel"`
	OnPrem          *string   `hcl:"onprem"`
	Switch          *string   `hcl:"switch"`
	HostLibraryPath *string   `hcl:"host_library_path"`
	Body            hcl.Body  `hcl:",body"`
	DefRange        hcl.Range `hcl:",def_range"`
}

var rolloutSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "rollout"}}}

var (
	scaleSetIDRE = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/virtualMachineScaleSets/[^/]+$`)
	vmIDRE       = regexp.MustCompile(`(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/virtualMachines/[^/]+$`)
)

// parseRollouts takes the rollout blocks out of body and returns them with
// the rest of the body.
func parseRollouts(body hcl.Body) ([]rawRollout, hcl.Body, hcl.Diagnostics) {
	content, rest, diags := body.PartialContent(rolloutSchema)
	var out []rawRollout
	for _, b := range content.Blocks {
		var r rawRollout
		diags = append(diags, gohcl.DecodeBody(b.Body, nil, &r)...)
		r.DefRange = b.DefRange
		out = append(out, r)
	}
	return out, rest, diags
}

// rollouts validates the rollout blocks against the file's images and
// onprem blocks.
func (v *validator) rollouts(raw []rawRollout, f *File) []Rollout {
	var out []Rollout
	seen := map[string]bool{}
	for _, r := range raw {
		ro := Rollout{MaxBatchPercent: DefaultMaxBatchPercent, MaxUnhealthyPercent: DefaultMaxUnhealthyPercent, Range: r.DefRange}
		ro.Image = v.imageOf(f, r.Image, r.Body, r.DefRange, "rollout")
		if ro.Image != "" {
			if seen[ro.Image] {
				v.errf(r.DefRange, "duplicate rollout block", "image %q has two rollout blocks; keep one", ro.Image)
			}
			seen[ro.Image] = true
		}
		if r.MaxBatchPercent != nil {
			ro.MaxBatchPercent = *r.MaxBatchPercent
			if ro.MaxBatchPercent < 5 || ro.MaxBatchPercent > 100 {
				v.errf(attrRange(r.Body, "max_batch_percent", r.DefRange), "invalid max_batch_percent",
					"%d: use 5 to 100 (percent of a scale set's instances upgraded at once; Azure's maxBatchInstancePercent allows the same)", ro.MaxBatchPercent)
			}
		}
		if r.MaxUnhealthyPercent != nil {
			ro.MaxUnhealthyPercent = *r.MaxUnhealthyPercent
			if ro.MaxUnhealthyPercent < 0 || ro.MaxUnhealthyPercent > 100 {
				v.errf(attrRange(r.Body, "max_unhealthy_percent", r.DefRange), "invalid max_unhealthy_percent",
					"%d: use 0 (any unhealthy instance pauses the rollout) to 100", ro.MaxUnhealthyPercent)
			}
		}
		if r.Pause != nil {
			d, err := ParseDuration(*r.Pause)
			if err != nil || d < 0 {
				v.errf(attrRange(r.Body, "pause", r.DefRange), "invalid pause", "%q: use a duration such as \"30s\" or \"5m\"", *r.Pause)
			}
			ro.Pause = d
		}
		for _, id := range r.ScaleSets {
			if !scaleSetIDRE.MatchString(strings.TrimRight(id, "/")) {
				v.errf(attrRange(r.Body, "scale_sets", r.DefRange), "invalid scale set id",
					"%q: use /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/NAME", id)
			}
			ro.ScaleSets = append(ro.ScaleSets, strings.TrimRight(id, "/"))
		}
		for _, id := range r.VMs {
			if !vmIDRE.MatchString(strings.TrimRight(id, "/")) {
				v.errf(attrRange(r.Body, "vms", r.DefRange), "invalid VM id",
					"%q: use /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/NAME", id)
			}
			ro.VMs = append(ro.VMs, strings.TrimRight(id, "/"))
		}
		for i := range r.Hosts {
			ro.Hosts = append(ro.Hosts, v.rolloutHost(&r.Hosts[i], ro.Image, f))
		}
		if len(ro.ScaleSets)+len(ro.VMs)+len(ro.Hosts) == 0 {
			v.errf(r.DefRange, "rollout has no target",
				"the rollout block names nothing to roll; add scale_sets = [\"/subscriptions/...\"], vms = [...] or hosts { channel = \"prod\" }")
		}
		out = append(out, ro)
	}
	return out
}

func (v *validator) rolloutHost(r *rawRolloutHost, image string, f *File) RolloutHost {
	h := RolloutHost{Channel: defaultPromoteTo}
	if r.Channel != nil {
		h.Channel = *r.Channel
		if !nameRE.MatchString(h.Channel) {
			v.errf(attrRange(r.Body, "channel", r.DefRange), "invalid channel", "%q is not a channel name (letters, digits, . _ -)", h.Channel)
		}
	}
	var candidates []OnPrem
	for _, o := range f.OnPrem {
		if o.Image == image {
			candidates = append(candidates, o)
		}
	}
	switch {
	case r.OnPrem != nil:
		h.OnPrem = *r.OnPrem
		found := false
		for _, o := range f.OnPrem {
			if o.Name == h.OnPrem {
				h.Library, found = o.Library, true
			}
		}
		if !found {
			v.errf(attrRange(r.Body, "onprem", r.DefRange), "unknown onprem block", "hosts refers to onprem %q, which is not declared", h.OnPrem)
		}
	case len(candidates) == 1:
		h.OnPrem, h.Library = candidates[0].Name, candidates[0].Library
	case len(candidates) == 0:
		v.errf(r.DefRange, "no on-prem library", "hosts: no onprem block publishes image %q; the replacement scripts need its library: add onprem \"NAME\" { library = ... }", image)
	default:
		v.errf(r.DefRange, "onprem required", "hosts: several onprem blocks publish image %q; say which one with onprem = \"NAME\"", image)
	}
	if r.Switch != nil {
		h.Switch = *r.Switch
	}
	h.HostLibraryPath = h.Library
	if r.HostLibraryPath != nil {
		h.HostLibraryPath = *r.HostLibraryPath
	}
	for _, s := range []struct{ name, val string }{{"switch", h.Switch}, {"host_library_path", h.HostLibraryPath}} {
		if strings.ContainsFunc(s.val, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			v.errf(attrRange(r.Body, s.name, r.DefRange), "invalid "+s.name, "%q contains control characters", s.val)
		}
	}
	return h
}

// Rollout returns the rollout policy of image, or nil.
func (f *File) Rollout(image string) *Rollout {
	for i := range f.Rollouts {
		if f.Rollouts[i].Image == image {
			return &f.Rollouts[i]
		}
	}
	return nil
}
