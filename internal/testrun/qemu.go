// Package testrun boots a version in the test environment and checks it: the
// image's own drift check must be clean on first boot (when the test says so)
// and every declared command must exit as expected.
//
// The qemu runner boots the version's on-prem library copy read-only through
// a throwaway qcow2 overlay, with no network (-nic none). The test spec goes
// in as a small raw disk (virtio, read-only) whose first bytes are a spec
// frame (internal/agent); the agent in the image, started at boot with
// `imgpipe agent --once --report-to serial`, answers with a report frame on
// the second serial port (COM2), while the console stays on COM1. The runner
// never trusts the report: it is parsed with strict bounds, and a malformed,
// oversized or stale (wrong nonce) report fails the test.
package testrun

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"imgpipe/internal/agent"
)

// Test is one declared test (a test block of the pipeline file).
type Test struct {
	Name        string
	BootTimeout time.Duration
	// BootMarker is text the console must show (e.g. "login:"); "" means
	// the report arriving marks the boot.
	BootMarker string
	DriftClean bool
	Commands   []agent.TestCommand
}

// Check is one verdict of a run.
type Check struct {
	Name   string `json:"name"` // boot, report, drift, command:NAME
	Passed bool   `json:"passed"`
	Output string `json:"output,omitempty"` // excerpt: what failed, command output
}

// Result is one test run.
type Result struct {
	Test       string    `json:"test"`
	Runner     string    `json:"runner"` // qemu-kvm, qemu-tcg
	Image      string    `json:"image"`
	Version    string    `json:"version"`
	Digest     string    `json:"artifact_digest,omitempty"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Passed     bool      `json:"passed"`
	Checks     []Check   `json:"checks"`
	// ConsoleTail is the end of the guest's console, for a failed boot.
	ConsoleTail string `json:"console_tail,omitempty"`
}

// FirstFailure returns the first failing check, or nil.
func (r *Result) FirstFailure() *Check {
	for i := range r.Checks {
		if !r.Checks[i].Passed {
			return &r.Checks[i]
		}
	}
	return nil
}

// Disk is the version's library copy to boot.
type Disk struct {
	Path   string // the library copy (never written)
	Format string // qemu format: vhdx, vpc, raw, qcow2
	// Generation is V1 (BIOS) or V2 (UEFI: needs OVMF).
	Generation string
}

// Qemu runs tests with qemu-system-x86_64.
type Qemu struct {
	System string // qemu-system-x86_64 (default: from PATH)
	Img    string // qemu-img (default: from PATH)
	// Accel is kvm, tcg, or "" for KVM when /dev/kvm can be opened, else TCG.
	Accel    string
	MemoryMB int    // default 512
	TempDir  string // where the overlay lives (default os.TempDir())
	// Firmware is the UEFI firmware for V2 disks (default: OVMF from Debian's ovmf).
	Firmware string
	// Progress, when set, hears what the runner is doing.
	Progress func(string)
}

const (
	// maxSerialBytes bounds what a guest may write to either port before it
	// is stopped (a console or report flood fails the test).
	maxSerialBytes = agent.MaxScanBytes
	pollEvery      = 200 * time.Millisecond
)

func (q *Qemu) say(format string, a ...any) {
	if q.Progress != nil {
		q.Progress(fmt.Sprintf(format, a...))
	}
}

func (q *Qemu) accel() string {
	switch q.Accel {
	case "kvm", "tcg":
		return q.Accel
	}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err == nil {
		f.Close()
		return "kvm"
	}
	return "tcg"
}

// Run boots disk with test t for image@version and returns the verdicts.
// The error is for the runner itself (qemu missing, overlay not made); a
// guest that fails in any way gives a Result with a failing check. Nothing
// is left behind: the qemu process is killed and waited for, the overlay,
// spec disk and serial files are removed.
func (q *Qemu) Run(ctx context.Context, disk Disk, image, version string, t Test) (res Result, err error) {
	res = Result{Test: t.Name, Image: image, Version: version, StartedAt: time.Now().UTC()}
	defer func() { res.FinishedAt = time.Now().UTC() }()
	sys, img := q.System, q.Img
	if sys == "" {
		sys = "qemu-system-x86_64"
	}
	if img == "" {
		img = "qemu-img"
	}
	if sys, err = exec.LookPath(sys); err != nil {
		return res, fmt.Errorf("the qemu runner needs qemu-system-x86_64: %w (apt-get install qemu-system-x86)", err)
	}
	if img, err = exec.LookPath(img); err != nil {
		return res, fmt.Errorf("the qemu runner needs qemu-img: %w (apt-get install qemu-utils)", err)
	}
	lib, err := filepath.Abs(disk.Path)
	if err != nil {
		return res, err
	}
	if _, err := os.Stat(lib); err != nil {
		return res, fmt.Errorf("the library copy: %w", err)
	}
	if t.BootTimeout <= 0 {
		t.BootTimeout = 5 * time.Minute
	}
	spec, frame, err := newSpec(t, image, version)
	if err != nil {
		return res, err
	}
	work, err := os.MkdirTemp(q.TempDir, "imgpipe-test-")
	if err != nil {
		return res, err
	}
	defer func() {
		if rerr := os.RemoveAll(work); rerr != nil && err == nil {
			err = fmt.Errorf("remove the overlay folder: %w", rerr)
		}
	}()
	overlay := filepath.Join(work, "overlay.qcow2")
	format := disk.Format
	if format == "" {
		format = "vhdx"
	}
	if out, err := exec.CommandContext(ctx, img, "create", "-q", "-f", "qcow2", "-b", lib, "-F", format, overlay).CombinedOutput(); err != nil {
		return res, fmt.Errorf("qemu-img create the overlay on %s: %w: %s", lib, err, bytes.TrimSpace(out))
	}
	specImage, err := agent.SpecDisk(frame)
	if err != nil {
		return res, err
	}
	specDisk := filepath.Join(work, "spec.img")
	if err := os.WriteFile(specDisk, specImage, 0o600); err != nil {
		return res, err
	}
	console, report := filepath.Join(work, "console.log"), filepath.Join(work, "report.log")
	accel := q.accel()
	res.Runner = "qemu-" + accel
	mem := q.MemoryMB
	if mem <= 0 {
		mem = 512
	}
	args := []string{"-machine", "pc", "-accel", accel, "-m", fmt.Sprint(mem), "-smp", "1",
		"-nodefaults", "-display", "none", "-no-reboot", "-nic", "none",
		"-drive", "file=" + overlay + ",format=qcow2,if=ide,index=0",
		"-drive", "file=" + specDisk + ",format=raw,if=virtio,readonly=on",
		"-serial", "file:" + console, "-serial", "file:" + report}
	if disk.Generation == "V2" {
		fw := q.Firmware
		if fw == "" {
			fw = "/usr/share/ovmf/OVMF.fd"
		}
		if _, err := os.Stat(fw); err != nil {
			return res, fmt.Errorf("a generation 2 (UEFI) disk needs OVMF firmware at %s: apt-get install ovmf", fw)
		}
		args = append(args, "-bios", fw)
	}
	q.say("booting %s@%s (%s, %s) for test %s, up to %s", image, version, format, res.Runner, t.Name, t.BootTimeout)
	cmd := exec.Command(sys, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start qemu: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			killProcessGroup(cmd)
			<-exited
		}
	}
	defer stop()

	deadline := time.NewTimer(t.BootTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	var why string
wait:
	for {
		select {
		case <-ctx.Done():
			stop()
			return res, ctx.Err()
		case werr := <-exited:
			stopped = true
			if werr != nil && !fileHas(report, agent.FrameMark) {
				why = fmt.Sprintf("qemu stopped: %v: %s", werr, agent.Cut(strings.TrimSpace(stderr.String()), 512))
			}
			break wait
		case <-deadline.C:
			why = fmt.Sprintf("no report within the boot timeout of %s", t.BootTimeout)
			break wait
		case <-tick.C:
			if size(report) > maxSerialBytes || size(console) > maxSerialBytes {
				why = fmt.Sprintf("the guest wrote more than %d bytes to a serial port", maxSerialBytes)
				break wait
			}
			if fileHas(report, agent.FrameEndLine) {
				break wait
			}
		}
	}
	stop()
	res.ConsoleTail = tail(console, 2048)
	boot := Check{Name: "boot", Passed: true}
	if t.BootMarker != "" && !fileHas(console, t.BootMarker) {
		boot = Check{Name: "boot", Output: fmt.Sprintf("the console never showed %q", t.BootMarker)}
	}
	if why == "" {
		why = "the guest stopped without a report"
	}
	res.Checks, _ = judgeReport(report, spec, boot, why)
	res.Passed = res.FirstFailure() == nil
	return res, nil
}

// noReportHint ends the boot failure of a guest that never answered.
const noReportHint = " (does the image run `imgpipe agent --once --report-to serial` at boot?)"

// judgeReport reads the report frame the guest wrote (path: the serial log
// or the report the Hyper-V script saved) and judges it against spec, after
// boot, the boot check so far. No report fails the boot, saying why the
// runner stopped waiting; an unusable report (malformed, oversized, wrong
// checksum) fails the report check; a good one gives its Verdicts, and is
// returned.
func judgeReport(path string, spec *agent.TestSpec, boot Check, why string) ([]Check, *agent.TestReport) {
	var rep agent.TestReport
	err := agent.DecodeFrameFile(path, agent.FrameReport, &rep)
	switch {
	case errors.Is(err, agent.ErrNoFrame) || errors.Is(err, os.ErrNotExist):
		return []Check{{Name: "boot", Output: why + noReportHint}}, nil
	case err != nil:
		return []Check{boot, {Name: "report", Output: "the guest's report is unusable: " + err.Error()}}, nil
	}
	return append([]Check{boot}, Verdicts(spec, &rep)...), &rep
}

// newSpec makes the spec of one run of t (with a fresh nonce) and its frame.
func newSpec(t Test, image, version string) (*agent.TestSpec, []byte, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, nil, err
	}
	spec := &agent.TestSpec{Schema: agent.TestSpecSchema, Test: t.Name, Nonce: hex.EncodeToString(nonce),
		Image: image, Version: version, DriftClean: t.DriftClean, Commands: t.Commands}
	frame, err := agent.EncodeFrame(agent.FrameSpec, spec)
	if err != nil {
		return nil, nil, fmt.Errorf("test %s: %w", t.Name, err)
	}
	return spec, frame, nil
}

// Verdicts judges a decoded report against the spec it answers.
func Verdicts(spec *agent.TestSpec, rep *agent.TestReport) []Check {
	if rep.Nonce != spec.Nonce || rep.Test != spec.Test {
		msg := "the report does not answer this run's spec (stale or foreign report)"
		if rep.Error != "" {
			msg += ": the agent said: " + rep.Error
		}
		return []Check{{Name: "report", Output: msg}}
	}
	if rep.Error != "" {
		return []Check{{Name: "report", Output: "the agent could not run the test: " + rep.Error}}
	}
	out := []Check{{Name: "report", Passed: true}}
	d := rep.Drift
	if spec.DriftClean {
		c := Check{Name: "drift", Passed: d.Error == "" && !d.Drifted}
		switch {
		case d.Error != "":
			c.Output = "no drift check ran: " + d.Error
		case d.Drifted:
			var names []string
			for _, ch := range d.Changes {
				names = append(names, ch.Kind+" "+ch.Name)
			}
			if d.Truncated > 0 {
				names = append(names, fmt.Sprintf("and %d more", d.Truncated))
			}
			c.Output = "drifted from its baseline on first boot: " + strings.Join(names, ", ")
		}
		out = append(out, c)
	}
	got := map[string]agent.CommandResult{}
	for _, r := range rep.Commands {
		got[r.Name] = r
	}
	for _, c := range spec.Commands {
		r, ok := got[c.Name]
		ch := Check{Name: "command:" + c.Name}
		switch {
		case !ok:
			ch.Output = "the report has no result for it"
		case r.TimedOut:
			ch.Output = fmt.Sprintf("timed out after %ds; output: %s", c.TimeoutSec, r.Output)
		case r.ExitCode != c.ExpectExit:
			ch.Output = fmt.Sprintf("exit %d, want %d; output: %s", r.ExitCode, c.ExpectExit, r.Output)
			if r.Error != "" {
				ch.Output += " (" + r.Error + ")"
			}
		default:
			ch.Passed, ch.Output = true, r.Output
		}
		ch.Output = agent.Cut(ch.Output, agent.MaxOutputBytes)
		out = append(out, ch)
	}
	return out
}

func size(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// fileHas reports whether the file holds s (reading at most maxSerialBytes).
func fileHas(p, s string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, maxSerialBytes))
	return bytes.Contains(b, []byte(s))
}

func tail(p string, n int64) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > n {
		_, _ = f.Seek(fi.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return strings.ToValidUTF8(strings.ReplaceAll(string(b), "\r", ""), "?")
}
