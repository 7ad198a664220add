package reconcile

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
)

func TestLoadFileNeedsARebuildBlock(t *testing.T) {
	dir := t.TempDir()
	bare, with := filepath.Join(dir, "bare.hcl"), filepath.Join(dir, "with.hcl")
	os.WriteFile(bare, []byte(pipelineBase), 0o644)
	os.WriteFile(with, []byte(pipelineBase+"rebuild {\n  on_revoke = true\n}\n"), 0o644)
	if _, err := LoadFile(bare); !errors.Is(err, ErrNoRebuild) || !strings.Contains(err.Error(), bare+" has no rebuild block") {
		t.Fatalf("a file without a rebuild block: %v", err)
	}
	if f, err := LoadFile(with); err != nil || len(f.Rebuilds) != 1 {
		t.Fatalf("a file with a rebuild block: %v", err)
	}
	if _, err := LoadFile(filepath.Join(dir, "none.hcl")); err == nil || errors.Is(err, ErrNoRebuild) {
		t.Fatalf("a missing file: %v", err)
	}
}

func TestLogRounds(t *testing.T) {
	var b bytes.Buffer
	LogRounds(slog.New(slog.NewTextHandler(&b, nil)))(Round{
		Decisions: []Decision{
			{Image: "web", Action: catalog.DecisionRebuild, Reason: "web@1.4.0 revoked: rebuild"},
			{Image: "db", Action: ActionNone, Reason: "nothing matched"},
			{Image: "api", Action: catalog.DecisionWait, Reason: "cool-down", Repeated: true},
		},
		Outcomes: []Outcome{{Image: "web", State: catalog.RebuildSucceeded, Version: "1.4.1", Promoted: "prod"}},
	}, errors.New("catalog gone"))
	out := b.String()
	for _, want := range []string{`level=WARN msg=reconcile err="catalog gone"`, `image=web decision=rebuild reason="web@1.4.0 revoked: rebuild"`,
		`msg="reconcile rebuild" image=web state=` + catalog.RebuildSucceeded + ` version=1.4.1 promoted=prod`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "image=db") || strings.Contains(out, "image=api") {
		t.Errorf("a none or repeated decision was logged:\n%s", out)
	}
}

// Evaluate: a dry run decides and records nothing, never runs a rebuild;
// the real round runs it, and a failed rebuild is the round's error.
func TestEvaluate(t *testing.T) {
	e := newEnv(t, filepath.Join(t.TempDir(), "catalog.db"), "rebuild {\n  on_revoke = true\n}\n")
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	if _, err := e.cat.Revoke(e.ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "CVE", By: "sec"}); err != nil {
		t.Fatal(err)
	}
	run := &fakeRunner{e: e, buildErr: errors.New("packer exited 1")}
	rd, err := e.rec.Evaluate(e.ctx, true, run, nil)
	if err != nil || len(rd.Decisions) != 1 || rd.Decisions[0].Action != catalog.DecisionRebuild || rd.Err() != nil {
		t.Fatalf("dry run: %+v %v", rd, err)
	}
	if ds, _ := e.cat.Decisions(e.ctx, catalog.DecisionFilter{Image: "web"}); len(ds) != 0 || run.builds != 0 {
		t.Fatalf("a dry run recorded %d decisions, built %d times", len(ds), run.builds)
	}
	var started []string
	rd, err = e.rec.Evaluate(e.ctx, false, run, func(d Decision) { started = append(started, d.Image) })
	if err != nil || run.builds != 1 || len(started) != 1 || len(rd.Outcomes) != 1 || !errors.Is(rd.Err(), ErrRebuildFailed) {
		t.Fatalf("round: %+v %v, builds %d, started %v", rd, err, run.builds, started)
	}
}
