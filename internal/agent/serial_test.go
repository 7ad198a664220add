package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/drift"
)

func validSpec() *TestSpec {
	return &TestSpec{Schema: TestSpecSchema, Test: "smoke", Nonce: "0123456789abcdef", Image: "web", Version: "1.0.0", DriftClean: true,
		Commands: []TestCommand{{Name: "ok", Run: "true", TimeoutSec: 5}}}
}

func TestFrameRoundTripThroughConsoleNoise(t *testing.T) {
	frame, err := EncodeFrame(FrameSpec, validSpec())
	if err != nil {
		t.Fatal(err)
	}
	// a tty that maps \n to \r\n, console noise before and after
	noisy := "[    0.000000] Linux version 6.1\r\n" + strings.ReplaceAll(string(frame), "\n", "\r\n") + "login: \r\n"
	var got TestSpec
	if err := DecodeFrame(strings.NewReader(noisy), FrameSpec, &got); err != nil {
		t.Fatal(err)
	}
	if got.Nonce != "0123456789abcdef" || len(got.Commands) != 1 || got.Commands[0].Run != "true" {
		t.Fatalf("decoded %+v", got)
	}
	// the other kind is not found in it
	var r TestReport
	if err := DecodeFrame(strings.NewReader(noisy), FrameReport, &r); !errors.Is(err, ErrNoFrame) {
		t.Fatalf("report from a spec frame: %v, want ErrNoFrame", err)
	}
}

// header builds a frame header for payload with an announced length.
func frameOf(payload string, announced int, sum string) string {
	if sum == "" {
		s := sha256.Sum256([]byte(payload))
		sum = hex.EncodeToString(s[:])
	}
	return fmt.Sprintf("==IMGPIPE-SPEC v1 len=%d sha256=%s==\n%s\n==IMGPIPE-END==\n", announced, sum, payload)
}

func TestDecodeFrameRefusesMalformed(t *testing.T) {
	good, err := EncodeFrame(FrameSpec, validSpec())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(good)), "\n")
	payload := lines[1]
	huge := strings.Repeat("x", maxLine+10)
	cases := []struct {
		name, in, want string
	}{
		{"noise only", "login:\nhello\n", "no spec frame"},
		{"empty", "", "no spec frame"},
		{"bad header", "==IMGPIPE-SPEC v2 len=3==\n{}\n", "bad spec header"},
		{"oversized announced", frameOf("{}", MaxFrameBytes+1, ""), "oversized"},
		{"huge length digits", "==IMGPIPE-SPEC v1 len=9999999999 sha256=" + strings.Repeat("0", 64) + "==\n", "oversized"},
		{"zero length", frameOf("", 0, ""), "oversized"},
		{"length mismatch", frameOf(payload, len(payload)+1, ""), "announced"},
		{"checksum", frameOf(payload, len(payload), strings.Repeat("0", 64)), "checksum"},
		{"truncated", lines[0] + "\n" + payload[:len(payload)/2], "announced"},
		{"payload over the line bound", frameOf(huge, MaxFrameBytes, ""), "truncated or longer"},
		{"no end line", lines[0] + "\n" + payload + "\n", "no end line"},
		{"unknown field", frameOf(`{"schema":"imgpipe-test-spec/v1","evil":1}`, 42, ""), "unknown field"},
		{"trailing data", frameOf(payload+` {}`, len(payload)+3, ""), "after its JSON"},
		{"not json", frameOf("not json!", 9, ""), "not valid JSON"},
		{"invalid content", frameOf(`{"schema":"imgpipe-test-spec/v1","test":"x","nonce":"short"}`, 60, ""), "nonce"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s TestSpec
			err := DecodeFrame(strings.NewReader(c.in), FrameSpec, &s)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one containing %q", err, c.want)
			}
			if c.want != "no spec frame" && !errors.Is(err, ErrBadFrame) {
				t.Fatalf("err %v is not ErrBadFrame", err)
			}
		})
	}
}

func TestSpecValidateBounds(t *testing.T) {
	for name, mut := range map[string]func(*TestSpec){
		"schema":      func(s *TestSpec) { s.Schema = "x" },
		"name":        func(s *TestSpec) { s.Test = "a b" },
		"dup command": func(s *TestSpec) { s.Commands = append(s.Commands, s.Commands[0]) },
		"exit":        func(s *TestSpec) { s.Commands[0].ExpectExit = 256 },
		"timeout":     func(s *TestSpec) { s.Commands[0].TimeoutSec = 0 },
		"nul":         func(s *TestSpec) { s.Commands[0].Run = "a\x00b" },
		"too many": func(s *TestSpec) {
			for i := range MaxCommands {
				s.Commands = append(s.Commands, TestCommand{Name: fmt.Sprintf("c%d", i), Run: "true", TimeoutSec: 1})
			}
		},
	} {
		s := validSpec()
		mut(s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// imageTree makes a tree with identity and baseline over srv/.
func imageTree(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "srv", "app.conf"), []byte("a=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := drift.Identity{Image: "web", Version: "1.0.0"}
	if _, err := drift.WriteIdentity(root, id); err != nil {
		t.Fatal(err)
	}
	b, err := drift.Capture(context.Background(), root, drift.CaptureOptions{Rules: drift.Rules{Paths: []string{"srv"}}, Identity: &id})
	if err != nil {
		t.Fatal(err)
	}
	bp, _ := drift.BaselinePath(root)
	if _, err := drift.WriteBaselineFile(bp, b); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestRunSerialTest(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	root := imageTree(t)
	// drift after capture: the report must name the file
	if err := os.WriteFile(filepath.Join(root, "srv", "app.conf"), []byte("a=2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spec := validSpec()
	spec.Commands = append(spec.Commands,
		TestCommand{Name: "fails", Run: "echo disk full >&2; exit 1", TimeoutSec: 5},
		TestCommand{Name: "slow", Run: "sleep 30", TimeoutSec: 1},
		TestCommand{Name: "chatty", Run: "i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done", TimeoutSec: 10})
	frame, err := EncodeFrame(FrameSpec, spec)
	if err != nil {
		t.Fatal(err)
	}
	specDisk := filepath.Join(dir, "spec.img")
	disk := append(frame, make([]byte, 1<<20)...) // a raw disk: the frame, then zeros
	if err := os.WriteFile(specDisk, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	port := filepath.Join(dir, "ttyS1")
	if err := os.WriteFile(port, []byte("boot noise\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewLocal(Options{Root: root, Host: "guest", Platform: "onprem"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := a.RunSerialTest(context.Background(), SerialOptions{Port: port, Spec: specDisk}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %v: the 1s timeout was not applied", d)
	}
	f, err := os.Open(port)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rep TestReport
	if err := DecodeFrame(f, FrameReport, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Nonce != spec.Nonce || !rep.Drift.Drifted || len(rep.Drift.Changes) == 0 || rep.Drift.Changes[0].Name != "srv/app.conf" {
		t.Fatalf("drift not reported with the file named: %+v", rep.Drift)
	}
	byName := map[string]CommandResult{}
	for _, c := range rep.Commands {
		byName[c.Name] = c
	}
	if c := byName["ok"]; c.ExitCode != 0 {
		t.Errorf("ok: %+v", c)
	}
	if c := byName["fails"]; c.ExitCode != 1 || !strings.Contains(c.Output, "disk full") {
		t.Errorf("fails: %+v", c)
	}
	if c := byName["slow"]; !c.TimedOut || c.ExitCode != -1 {
		t.Errorf("slow: %+v", c)
	}
	if c := byName["chatty"]; len(c.Output) > MaxOutputBytes || !strings.Contains(c.Output, "line 1999") {
		t.Errorf("chatty: %d bytes, tail kept: %v", len(c.Output), strings.Contains(c.Output, "line 1999"))
	}
}

func TestRunSerialTestWithoutSpecStillReports(t *testing.T) {
	root := imageTree(t)
	sys := t.TempDir()
	if err := os.MkdirAll(filepath.Join(sys, "sys", "block", "sda"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(sys, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sys, "dev", "sda"), bytes.Repeat([]byte{0}, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	port := filepath.Join(t.TempDir(), "port")
	if err := os.WriteFile(port, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewLocal(Options{Root: root, Host: "guest", Platform: "onprem"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.RunSerialTest(context.Background(), SerialOptions{Port: port, SysRoot: sys}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(port)
	var rep TestReport
	if err := DecodeFrame(bytes.NewReader(b), FrameReport, &rep); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rep.Error, "no spec disk attached (looked at sda)") {
		t.Fatalf("error %q", rep.Error)
	}
}

// FuzzDecodeFrame: any serial output gives a valid report or an error, never
// a panic; a decoded report always passes Validate.
func FuzzDecodeFrame(f *testing.F) {
	rep := &TestReport{Schema: TestReportSchema, Test: "smoke", Nonce: "0123456789abcdef", Host: "h",
		StartedAt: time.Unix(1700000000, 0).UTC(), FinishedAt: time.Unix(1700000001, 0).UTC(), Error: "no spec"}
	good, err := EncodeFrame(FrameReport, rep)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte("==IMGPIPE-REPORT v1 len=2 sha256=" + strings.Repeat("0", 64) + "==\n{}\n==IMGPIPE-END==\n"))
	f.Add([]byte("noise\r\n==IMGPIPE-REPORT v1 len=99999999 sha256="))
	f.Fuzz(func(t *testing.T, in []byte) {
		var r TestReport
		if err := DecodeFrame(bytes.NewReader(in), FrameReport, &r); err == nil {
			if verr := r.Validate(); verr != nil {
				t.Fatalf("decoded an invalid report: %v", verr)
			}
		}
	})
}

// TestSpecDiskIsFoundByFindSpec: the spec disk a runner makes (SpecDisk) is
// what the agent's search of the block devices finds, and a saved frame file
// reads back with DecodeFrameFile; the marks runners watch for are the
// frame's own.
func TestSpecDiskIsFoundByFindSpec(t *testing.T) {
	frame, err := EncodeFrame(FrameSpec, validSpec())
	if err != nil {
		t.Fatal(err)
	}
	disk, err := SpecDisk(frame)
	if err != nil {
		t.Fatal(err)
	}
	if len(disk) != SpecDiskBytes || !bytes.HasPrefix(disk, frame) || bytes.Count(disk[len(frame):], []byte{0}) != SpecDiskBytes-len(frame) {
		t.Fatalf("spec disk of %d bytes, want %d: the frame then zeros", len(disk), SpecDiskBytes)
	}
	sys := t.TempDir()
	for _, d := range []string{"sys/block/sda", "sys/block/vdb", "dev"} {
		if err := os.MkdirAll(filepath.Join(sys, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(sys, "dev", "sda"), make([]byte, 4096), 0o644)
	os.WriteFile(filepath.Join(sys, "dev", "vdb"), disk, 0o644)
	got, err := FindSpec("auto", sys)
	if err != nil || got.Nonce != validSpec().Nonce {
		t.Fatalf("FindSpec of the spec disk: %+v %v", got, err)
	}
	var s TestSpec
	if err := DecodeFrameFile(filepath.Join(sys, "dev", "vdb"), FrameSpec, &s); err != nil || s.Test != "smoke" {
		t.Fatalf("DecodeFrameFile: %+v %v", s, err)
	}
	if err := DecodeFrameFile(filepath.Join(sys, "dev", "none"), FrameSpec, &s); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if !strings.HasPrefix(strings.TrimLeft(string(frame), "\n"), FrameMark+FrameSpec+" ") || !strings.HasSuffix(string(frame), "\n"+FrameEndLine+"\n") {
		t.Fatalf("frame %q does not carry FrameMark and FrameEndLine", frame)
	}
	if _, err := SpecDisk(make([]byte, specProbeBytes+1)); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("an oversized frame made a spec disk: %v", err)
	}
}

// TestNewAndNewLocalNameTheMachineAlike: both constructors fill in and
// refuse Root, Host and Platform the same way (one machine()).
func TestNewAndNewLocalNameTheMachineAlike(t *testing.T) {
	root := t.TempDir()
	newServer := func(o Options) (*Agent, error) {
		o.Server, o.Credential = "http://127.0.0.1:1", "t"
		return New(o)
	}
	for name, mk := range map[string]func(Options) (*Agent, error){"New": newServer, "NewLocal": NewLocal} {
		for _, tc := range []struct {
			opts Options
			want string
		}{
			{Options{Root: root, Host: "bad host"}, "cannot be reported"},
			{Options{Root: root, Host: "h", Platform: "gcp"}, "use auto, onprem or azure"},
		} {
			if _, err := mk(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s(%+v): %v, want %q", name, tc.opts, err, tc.want)
			}
		}
		a, err := mk(Options{Host: "h", Platform: "azure"})
		if err != nil || a.opts.Root != "/" || a.opts.Platform != "azure" {
			t.Errorf("%s: %+v %v, want root / and platform azure", name, a, err)
		}
		if a, err := mk(Options{Root: root}); err != nil || a.opts.Host == "" || a.opts.Platform != DetectPlatform(root) {
			t.Errorf("%s without host or platform: %+v %v", name, a, err)
		}
	}
}
