package azure

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/config"
)

// DeployCheck says whether a VM can be deployed from an image in a
// subscription and region, and what to do if not.
type DeployCheck struct {
	Image        string  `json:"image"`
	Subscription string  `json:"subscription"`
	Location     string  `json:"location"`
	OK           bool    `json:"ok"`
	Checks       []Check `json:"checks"`
}

// Check is one condition of a deployment.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Text renders the check for people.
func (d *DeployCheck) Text() string {
	var b strings.Builder
	verdict := "can be deployed"
	if !d.OK {
		verdict = "can NOT be deployed"
	}
	fmt.Fprintf(&b, "%s %s in subscription %s, region %s\n\n", d.Image, verdict, d.Subscription, d.Location)
	for _, c := range d.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "  %s %s: %s\n", mark, c.Name, c.Detail)
		if !c.OK && c.Fix != "" {
			fmt.Fprintf(&b, "       what to do: %s\n", c.Fix)
		}
	}
	return b.String()
}

func (d *DeployCheck) add(c Check) {
	d.Checks = append(d.Checks, c)
	if !c.OK {
		d.OK = false
	}
}

// CheckDeploy checks whether a VM in subscription/location can use id (a
// gallery image version, or a managed image). principal, if set, is the
// object id of the identity that will deploy (otherwise the share blocks
// recorded by imgpipe for that subscription are looked for).
func (p *Publisher) CheckDeploy(ctx context.Context, id ResourceID, subscription, location, principal string) (*DeployCheck, error) {
	subscription = strings.ToLower(subscription)
	location = config.NormalizeLocation(location)
	dc := &DeployCheck{Image: id.String(), Subscription: subscription, Location: location, OK: true}
	c := p.Clients
	switch id.Kind() {
	case "image":
		img, err := c.Images.Get(ctx, id.ResourceGroup, id.Image, nil)
		if isNotFound(err) {
			dc.add(Check{Name: "exists", OK: false, Detail: "managed image " + id.Image + " does not exist", Fix: "check the id, or publish again"})
			return dc, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read managed image: %w", err)
		}
		dc.add(Check{Name: "exists", OK: true, Detail: "managed image " + id.Image})
		loc := config.NormalizeLocation(deref(img.Location))
		dc.add(Check{Name: "region", OK: loc == location,
			Detail: fmt.Sprintf("a managed image is usable only in its own region; it is in %s", loc),
			Fix:    "deploy from the gallery version instead (replicate it to " + location + " with imgpipe replicate VERSION --add-region " + location + ")"})
		dc.add(Check{Name: "subscription", OK: strings.EqualFold(id.Subscription, subscription),
			Detail: fmt.Sprintf("a managed image is usable only in its own subscription; it is in %s", id.Subscription),
			Fix:    "deploy from the gallery version instead, shared with that subscription (share block in the pipeline file)"})
		return dc, nil
	case "version":
	default:
		return nil, fmt.Errorf("check-deploy takes a gallery image version or managed image id, not %s", id)
	}
	got, err := c.Versions.Get(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version,
		&armcompute.GalleryImageVersionsClientGetOptions{Expand: to.Ptr(armcompute.ReplicationStatusTypesReplicationStatus)})
	if isNotFound(err) {
		dc.add(Check{Name: "exists", OK: false, Detail: "version " + id.Version + " does not exist", Fix: "publish it: imgpipe publish -f pipeline.hcl"})
		return dc, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read version %s: %w", id.Version, err)
	}
	v := &got.GalleryImageVersion
	state := provisioning(v)
	dc.add(Check{Name: "provisioned", OK: state == "Succeeded", Detail: "version " + id.Version + " is " + state,
		Fix: "wait for it (imgpipe publish resumes watching) or, if Failed, publish again: it is made anew"})
	// region
	inTargets := false
	if pp := v.Properties.PublishingProfile; pp != nil {
		for _, r := range pp.TargetRegions {
			if r != nil && config.NormalizeLocation(deref(r.Name)) == location {
				inTargets = true
			}
		}
		if pp.EndOfLifeDate != nil && pp.EndOfLifeDate.Before(p.clock()) {
			dc.Checks = append(dc.Checks, Check{Name: "end of life", OK: true, Detail: "passed on " + pp.EndOfLifeDate.Format(time.DateOnly) + " (allowed, but publish a newer version)"})
		}
	}
	regionOK, detail := false, "not a target region of this version"
	if inTargets {
		detail = "a target region, replication status unknown"
		for _, r := range regionsOf(v) {
			if r.Region == location {
				regionOK = r.State == "Completed"
				detail = fmt.Sprintf("replication %s (%d%%)", r.State, r.Progress)
			}
		}
		if len(regionsOf(v)) == 0 && state == "Succeeded" {
			regionOK, detail = true, "a target region"
		}
	}
	fix := fmt.Sprintf("imgpipe replicate %s --add-region %s", id, location)
	if inTargets {
		fix = "wait until replication completes (imgpipe publish resumes watching)"
	}
	dc.add(Check{Name: "region", OK: regionOK, Detail: location + ": " + detail, Fix: fix})
	// access
	if strings.EqualFold(subscription, id.Subscription) {
		dc.add(Check{Name: "access", OK: true, Detail: "same subscription as the gallery (the deploying identity still needs read access there)"})
		return dc, nil
	}
	galleryID := id.GalleryID()
	pager := c.RoleAssignments.NewListForScopePager(galleryID, &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: to.Ptr("atScope()")})
	var found string
	var granted time.Time
	for pager.More() && found == "" {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list role assignments on %s: %w", id.Gallery, err)
		}
		for _, ra := range page.Value {
			if ra == nil || ra.Properties == nil {
				continue
			}
			pid := deref(ra.Properties.PrincipalID)
			switch {
			case principal != "" && strings.EqualFold(pid, principal):
				found = "principal " + pid + " has a role assignment on the gallery"
			case principal == "" && strings.EqualFold(deref(ra.Properties.Description), shareDescription(subscription)):
				found = "shared with subscription " + subscription + " through principal " + pid
			}
			if found != "" && ra.Properties.CreatedOn != nil {
				granted = *ra.Properties.CreatedOn
			}
		}
	}
	who := "the identity that deploys in " + subscription
	if principal != "" {
		who = "principal " + principal
	}
	window := p.RBACPropagation
	if window <= 0 {
		window = 10 * time.Minute
	}
	if age := p.clock().Sub(granted); found != "" && !granted.IsZero() && age < window {
		// A role assignment takes effect only once it has propagated:
		// until then deploys get LinkedAuthorizationFailed (rbac.go in azemu).
		dc.add(Check{Name: "access", OK: false,
			Detail: fmt.Sprintf("%s, granted %s ago: may take up to %s to take effect (Azure propagates role assignments in up to %s)",
				found, age.Round(time.Second), (window - age).Round(time.Second), window),
			Fix: "wait and check again; deploys until then may fail with LinkedAuthorizationFailed"})
		return dc, nil
	}
	dc.add(Check{Name: "access", OK: found != "",
		Detail: orText(found, "the gallery is in subscription "+id.Subscription+" and "+who+" has no role assignment on it"),
		Fix: fmt.Sprintf("add share { subscription = %q, principal_id = \"<object id of %s>\" } to the azure block and run imgpipe publish",
			subscription, who)})
	return dc, nil
}

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
