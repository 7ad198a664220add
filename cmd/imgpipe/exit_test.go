package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/config"
	"imgpipe/internal/golden"
	"imgpipe/internal/transfer"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/")

// runMain runs imgpipe as main does (exit-code table, root rendering) and
// returns the status, stdout and stderr.
func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	old, oldGlobals := stdout, globals
	stdout = &out
	defer func() { stdout, globals = old, oldGlobals }()
	code := run(context.Background(), args, &errb)
	return code, out.String(), errb.String()
}

// TestExitCodeTable checks every status of the table through the CLI.
func TestExitCodeTable(t *testing.T) {
	raw := diskFixture(t) // raw: not Azure-ready
	env := azemutest.StartWithAzurite(t, azemu.Options{})
	dir := cliEmulatorEnv(t, env)
	biosDisk(t, dir)
	pipeline := filepath.Join(dir, "pipeline.hcl")
	writePipeline(t, pipeline, env, "rg-exit")
	tests := []struct {
		name string
		args []string
		want int
		text string // in stdout+stderr
	}{
		{"ok", []string{"version"}, exitOK, ""},
		{"typo in a subcommand", []string{"drift", "chek"}, exitFailure, `unknown command "chek" for "imgpipe drift"; did you mean "check"?`},
		{"unknown top-level command", []string{"frobnicate"}, exitFailure, `unknown command "frobnicate"`},
		{"unknown flag", []string{"version", "--no-such-flag"}, exitFailure, "unknown flag: --no-such-flag"},
		{"unknown flag of a group", []string{"onprem", "--no-such-flag"}, exitFailure, "unknown flag: --no-such-flag"},
		{"typo in a nested subcommand", []string{"onprem", "verfy"}, exitFailure, `did you mean "verify"?`},
		{"missing required flag", []string{"plan"}, exitFailure, `required flag(s) "file" not set`},
		{"failure", []string{"disk", "inspect", filepath.Join(dir, "missing.vhdx")}, exitFailure, "missing.vhdx"},
		{"negative: not Azure-ready", []string{"disk", "check", "--azure", raw}, exitNegative, "not ready for Azure"},
		{"negative: plan has changes", []string{"plan", "-f", pipeline, "--detailed-exitcode"}, exitNegative, "+ create"},
		{"still replicating", []string{"publish", "-f", pipeline, "--yes", "--no-catalog", "--replication-timeout", "1ms"}, exitStillReplicating, "run publish again"},
		{"plan without changes", []string{"plan", "-f", pipeline, "--detailed-exitcode", "--replication-timeout", "1h"}, exitOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.name == "plan without changes" {
				// wait for the version to finish replicating first
				if code, o, e := runMain(t, "publish", "-f", pipeline, "--yes", "--no-catalog"); code != 0 {
					t.Fatalf("publish: %d\n%s%s", code, o, e)
				}
				args = []string{"plan", "-f", pipeline, "--detailed-exitcode"}
			}
			code, out, errText := runMain(t, args...)
			if code != tt.want || !strings.Contains(out+errText, tt.text) {
				t.Fatalf("imgpipe %s: exit %d, want %d (and %q)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, tt.want, tt.text, out, errText)
			}
			if code != 0 && code != exitNegative && strings.Count(errText, "imgpipe: ") != 1 {
				t.Errorf("the error should be shown exactly once:\n%s", errText)
			}
		})
	}
}

// writePipeline writes a pipeline file publishing dir/disk.raw to the emulator.
func writePipeline(t *testing.T, path string, env *azemutest.Env, rg string) {
	t.Helper()
	if err := os.WriteFile(path, fmt.Appendf(nil, `
image "app" {
  source  = "disk.raw"
  os_type = "Linux"
}
azure "emu" {
  subscription   = %q
  resource_group = %q
  location       = "westeurope"
  storage {
    account       = %q
    resource_group = "azemu-storage" # where the emulator registers its Azurite account
    container     = "vhds"
    blob_endpoint = %q
  }
  gallery    = "exit_gallery"
  definition = "app"
  version    = "1.0.0"
  target_region "northeurope" {}
  replication_timeout = "1m"
}
`, env.SubscriptionID, rg, env.Azurite.AccountName, env.Azurite.BlobEndpoint), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInterruptExits130 sends SIGINT to a running imgpipe process.
func TestInterruptExits130(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "IMGPIPE_TEST_MAIN=emulator --listen 127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "serving until interrupted") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("imgpipe emulator ended before serving: %s", stderr.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("imgpipe emulator did not start")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitInterrupted {
		t.Fatalf("after Ctrl-C: %v, want exit status %d\n%s", err, exitInterrupted, stderr.String())
	}
}

// TestCanceledWorkExits130: a command whose context is cancelled mid-work
// reports "interrupted", not "context canceled", and exits 130.
func TestCanceledWorkExits130(t *testing.T) {
	err := fmt.Errorf("upload disk.raw: %w", context.Canceled)
	if got := exitCode(err, false); got != exitInterrupted {
		t.Fatalf("exit %d, want %d", got, exitInterrupted)
	}
	old := globals
	defer func() { globals = old }()
	globals.output = "text"
	var buf bytes.Buffer
	renderError(&buf, &buf, err, exitInterrupted)
	if !strings.Contains(buf.String(), "imgpipe: interrupted\n") || !strings.Contains(buf.String(), "run the same command again") {
		t.Fatalf("rendered:\n%s", buf.String())
	}
}

// TestVerifyMismatchIsNegative: an upload whose target differs from its
// source is a negative answer (exit 2, the code of "verify mismatch"), not
// a failure and not "still replicating".
func TestVerifyMismatchIsNegative(t *testing.T) {
	err := fmt.Errorf("upload disk.raw: %w: bytes [0, 512) on the target differ from the source", transfer.ErrVerify)
	if got := exitCode(err, false); got != exitNegative {
		t.Fatalf("exit %d, want %d", got, exitNegative)
	}
}

// errorGolden compares got with testdata/errors/NAME.golden (-update rewrites it).
func errorGolden(t *testing.T, name, got string) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "errors", name+".golden"), got, *updateGolden)
}

// TestErrorRenderingGolden renders real errors: Entra ID refusing a client
// secret (through the CLI, as text and as the JSON error object) and Azure
// Storage refusing a shared key (Azurite through the SDK).
func TestErrorRenderingGolden(t *testing.T) {
	env := azemutest.StartWithAzurite(t, azemu.Options{})
	dir := cliEmulatorEnv(t, env)
	biosDisk(t, dir)
	pipeline := filepath.Join(dir, "pipeline.hcl")
	writePipeline(t, pipeline, env, "rg-golden")
	t.Setenv("AZURE_CLIENT_SECRET", "not-the-secret")

	t.Run("credential", func(t *testing.T) {
		code, out, errText := runMain(t, "plan", "-f", pipeline)
		if code != exitFailure || out != "" {
			t.Fatalf("exit %d, stdout %q", code, out)
		}
		if strings.Contains(errText, "not-the-secret") {
			t.Fatal("the secret was shown")
		}
		errorGolden(t, "credential", errText)
	})
	t.Run("json", func(t *testing.T) {
		code, out, errText := runMain(t, "plan", "-f", pipeline, "-o", "json")
		if code != exitFailure || errText != "" {
			t.Fatalf("exit %d, stderr %q", code, errText)
		}
		errorGolden(t, "credential-json", out)
	})
	t.Run("storage", func(t *testing.T) {
		wrong, err := azblob.NewSharedKeyCredential(env.Azurite.AccountName, "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=")
		if err != nil {
			t.Fatal(err)
		}
		u := env.Azurite.BlobEndpoint + "/vhds/app-1.0.0.vhd"
		c, err := pageblob.NewClientWithSharedKeyCredential(u, wrong, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Create(context.Background(), 512, &pageblob.CreateOptions{SequenceNumber: to.Ptr[int64](0)})
		if err == nil {
			t.Fatal("Azurite accepted a wrong key")
		}
		old := globals
		defer func() { globals = old }()
		globals.output = "text" // as the root sets it
		var buf bytes.Buffer
		err = fmt.Errorf("upload disk.raw to page blob app-1.0.0.vhd: %w", err)
		renderError(&buf, &buf, err, exitCode(err, false))
		errorGolden(t, "storage", strings.ReplaceAll(buf.String(), env.Azurite.AccountName, "ACCOUNT"))
	})
}

// TestSavedPlanThroughCLI: plan --out, then publish --plan refuses once the
// source changed (exit 1, naming the change) and applies a fresh one.
func TestSavedPlanThroughCLI(t *testing.T) {
	env := azemutest.StartWithAzurite(t, azemu.Options{})
	dir := cliEmulatorEnv(t, env)
	biosDisk(t, dir)
	pipeline := filepath.Join(dir, "pipeline.hcl")
	writePipeline(t, pipeline, env, "rg-saved")
	saved := filepath.Join(dir, "plan.json")
	if code, o, e := runMain(t, "plan", "-f", pipeline, "--out", saved); code != 0 || !strings.Contains(e, "publish --plan") {
		t.Fatalf("plan --out: %d\n%s%s", code, o, e)
	}
	variantDisk(t, filepath.Join(dir, "disk.raw"), "changed")
	code, out, errText := runMain(t, "publish", "--plan", saved, "--yes", "--no-catalog")
	if code != exitFailure || !strings.Contains(errText, "disk.raw changed since the plan was made") {
		t.Fatalf("publish --plan after the source changed: %d\n%s%s", code, out, errText)
	}
	if code, o, e := runMain(t, "plan", "-f", pipeline, "--out", saved); code != 0 {
		t.Fatalf("plan --out: %d\n%s%s", code, o, e)
	}
	if code, o, e := runMain(t, "publish", "--plan", saved, "--yes", "--no-catalog"); code != 0 || !strings.Contains(o, "published /subscriptions/") {
		t.Fatalf("publish --plan: %d\n%s%s", code, o, e)
	}
}

// TestDurationFlagsShareTheFileGrammar: a duration flag reads what the
// pipeline file reads ("1d" for --replication-timeout, as for
// replication_timeout), and refuses what it refuses.
func TestDurationFlagsShareTheFileGrammar(t *testing.T) {
	for _, s := range []string{"90d", "2w", "36h", "1h30m", "1d12h", "45s"} {
		var d time.Duration
		err := (*durationValue)(&d).Set(s)
		want, ferr := config.ParseDuration(s)
		if err != nil || ferr != nil || d != want {
			t.Errorf("%q: flag %v (%v), file %v (%v)", s, d, err, want, ferr)
		}
	}
	for _, s := range []string{"1.5d", "-1h", "x", ""} {
		var d time.Duration
		if err := (*durationValue)(&d).Set(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing.hcl")
	code, _, errText := runMain(t, "publish", "-f", missing, "--replication-timeout", "1d", "--yes")
	if code != exitFailure || strings.Contains(errText, "replication-timeout") || !strings.Contains(errText, "missing.hcl") {
		t.Fatalf("--replication-timeout 1d: exit %d\n%s", code, errText)
	}
}
