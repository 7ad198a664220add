package view

// The gallery verbs' answers: destroy, replicate, check-deploy, gc, upload
// and the emulator's environment.

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"

	"imgpipe/internal/azemu"
	"imgpipe/internal/catalog"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/transfer"
)

// Destroyed draws what destroy deleted (-o json: the plan, applied or not).
func Destroyed(w io.Writer, asJSON bool, d *pipeline.Destroyed) error {
	if !asJSON && !d.Applied {
		return nil // the plan went to stderr
	}
	return Write(w, asJSON, d.Plan, fmt.Sprintf("destroyed %s\n", d.ID))
}

// Replicated draws what replicate did; a note on the version's source
// (gone: Azure's answer) goes to errw, also when err is set.
func Replicated(w, errw io.Writer, asJSON bool, r *pipeline.Replicated, err error) error {
	if r == nil {
		return err
	}
	if r.Removing && !asJSON {
		fmt.Fprintf(w, "removed %s from %s\n", cmp.Or(strings.Join(r.Removed, ", "), "no region (none of them was a target)"), r.ID.Version)
	}
	res := r.Result
	if res != nil && res.AzureAnswer != "" && !asJSON {
		fmt.Fprintf(errw, "the version's source is gone (%s); Azure %s\n", res.Source.Why, strings.SplitN(res.AzureAnswer, "\n", 2)[0])
	}
	switch {
	case err != nil:
		return err
	case res == nil:
		return Write(w, asJSON, map[string]any{"version_id": r.ID.String(), "removed": r.Removed}, "")
	case len(res.Added) == 0:
		return Write(w, asJSON, res, fmt.Sprintf("%s already targets those regions\n", r.ID.Version))
	}
	return Write(w, asJSON, res, fmt.Sprintf("replicated %s to %s\n", r.ID.Version, strings.Join(res.Added, ", ")))
}

// GC draws what gc planned and, when it applied, did; err is gc's (e.g.
// pipeline.ErrNoExecutor with the plan), returned after drawing.
func GC(w io.Writer, asJSON bool, rep *pipeline.GCReport, err error) error {
	if rep == nil {
		return err
	}
	var werr error
	switch {
	case rep.Result == nil && asJSON: // planned only
		werr = JSON(w, struct {
			*catalog.GCPlan
			AzureConsulted bool `json:"azure_consulted"`
			Applied        bool `json:"applied"`
		}{rep.Plan, rep.AzureConsulted, false})
	case rep.Result == nil:
		werr = Write(w, false, nil, GCPlan(rep.Plan, rep.AzureConsulted))
	case asJSON:
		werr = JSON(w, struct {
			Plan   *catalog.GCPlan   `json:"plan"`
			Result *catalog.GCResult `json:"result"`
		}{rep.Plan, rep.Result})
	default:
		text := GCResult(rep.Result)
		if rep.Plan != nil {
			text = GCPlan(rep.Plan, true) + text
		}
		_ = Write(w, false, nil, text)
	}
	if err == nil {
		err = werr
	}
	return err
}

// Uploaded draws an upload's summary.
func Uploaded(w io.Writer, asJSON bool, res *transfer.Result) error {
	return Write(w, asJSON, res, strings.Join(res.Summary(), "\n")+"\n")
}

// Emulator draws the environment a local emulator serves, and that it is
// ready after took.
func Emulator(w io.Writer, asJSON bool, env azemu.Env, took time.Duration) error {
	t := Table{Header: []string{"SETTING", "VALUE"}, Rows: [][]string{
		{"endpoint", env.Endpoint}, {"authority host", env.AuthorityHost}, {"CA certificate", env.CACertPath},
		{"tenant id", env.TenantID}, {"client id", env.ClientID}, {"client secret", env.ClientSecret}, {"object id", env.ObjectID},
		{"subscription id", env.SubscriptionID + " (any well-formed id works)"}, {"blob endpoint", Dash(env.BlobEndpoint)},
		{"storage account", Dash(env.StorageAccountID)}, {"role assignments take effect after", env.RBACDelay},
		{"state", Dash(env.StateDir)}, {"shell exports", env.EnvFile},
	}}
	return Write(w, asJSON, env, t.String()+fmt.Sprintf("\nready in %s; serving until interrupted (Ctrl-C)\n", took.Round(time.Millisecond)))
}

// Deployable draws check-deploy's answer.
func Deployable(w io.Writer, asJSON bool, d *pipeline.Deployable) error {
	return Write(w, asJSON, d, d.Text()+d.Provenance.Text())
}
