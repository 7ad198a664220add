package agent

// The serial report protocol: how a test runner and the agent inside a guest
// talk without a network.
//
// The runner writes a test spec (what to run) as one frame at the start of a
// small raw "spec disk" it attaches to the guest; the agent, started at boot
// with --report-to serial, finds that disk, runs the drift check and the
// declared commands, and writes one report frame to a serial port (COM2,
// /dev/ttyS1, by default: the kernel console stays on COM1 so its messages
// never interleave with the report). A frame is three text lines:
//
//	==IMGPIPE-REPORT v1 len=N sha256=HEX==
//	{"schema":"imgpipe-test-report/v1",...}      (N bytes of JSON, one line)
//	==IMGPIPE-END==
//
// (SPEC instead of REPORT for the spec). JSON from encoding/json holds no raw
// control characters, so a tty that turns "\n" into "\r\n" cannot break it;
// the parser drops a trailing "\r". The parser bounds every read (line length,
// frame length, bytes scanned), checks length and checksum, refuses unknown
// fields and validates every value: a malformed or oversized frame is an
// error, never a crash or an unbounded allocation.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"imgpipe/internal/drift"
)

// Frame kinds.
const (
	FrameReport = "REPORT"
	FrameSpec   = "SPEC"
)

// Schemas of the two payloads.
const (
	TestSpecSchema   = "imgpipe-test-spec/v1"
	TestReportSchema = "imgpipe-test-report/v1"
)

// Bounds of the protocol.
const (
	// MaxFrameBytes bounds a frame's JSON payload.
	MaxFrameBytes = 256 << 10
	// MaxScanBytes bounds how much of a serial log is read looking for a frame.
	MaxScanBytes = 64 << 20
	// MaxCommands bounds the commands of one spec.
	MaxCommands = 32
	// MaxOutputBytes bounds a command's output excerpt (the tail is kept).
	MaxOutputBytes = 4 << 10
	maxCommandText = 4 << 10
	maxLine        = MaxFrameBytes + 1024
)

// The marks of a frame, for a runner watching a serial log fill: every
// header line holds FrameMark, every frame ends with the line FrameEndLine.
const (
	FrameMark    = "==IMGPIPE-"
	FrameEndLine = FrameMark + "END=="
)

// SpecDiskBytes is the size of the raw spec disk a runner attaches to the
// guest: the spec frame at offset 0, zeros after it (FindSpec reads its
// start). A frame always fits: it is at most MaxFrameBytes plus two lines.
const SpecDiskBytes = 1 << 20

// ErrNoFrame says the input holds no frame of the wanted kind.
var ErrNoFrame = errors.New("no frame found")

// ErrBadFrame marks a frame that breaks the protocol (wrong length or
// checksum, oversized, truncated, or invalid content).
var ErrBadFrame = errors.New("malformed frame")

// TestSpec is what a runner asks the agent in the guest to do.
type TestSpec struct {
	Schema  string `json:"schema"`
	Test    string `json:"test"`  // the test block's name
	Nonce   string `json:"nonce"` // echoed in the report: proves it is this run's
	Image   string `json:"image"`
	Version string `json:"version"`
	// DriftClean: the drift check must find nothing.
	DriftClean bool          `json:"drift_clean"`
	Commands   []TestCommand `json:"commands,omitempty"`
}

// TestCommand is one declared command, run by /bin/sh -c (cmd /c on Windows).
type TestCommand struct {
	Name       string `json:"name"`
	Run        string `json:"run"`
	ExpectExit int    `json:"expect_exit"`
	TimeoutSec int    `json:"timeout_sec"`
}

// TestReport is what the agent writes back.
type TestReport struct {
	Schema     string    `json:"schema"`
	Test       string    `json:"test"`
	Nonce      string    `json:"nonce"`
	Host       string    `json:"host"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Drift is the agent's drift report (its Error says why no check ran).
	Drift    Report          `json:"drift"`
	Commands []CommandResult `json:"commands,omitempty"`
	// Error says why the agent could not run the test at all (e.g. no spec).
	Error string `json:"error,omitempty"`
}

// CommandResult is the outcome of one declared command.
type CommandResult struct {
	Name       string `json:"name"`
	ExitCode   int    `json:"exit_code"` // -1 when it did not exit (timeout, not started)
	TimedOut   bool   `json:"timed_out,omitempty"`
	DurationMS int64  `json:"duration_ms"`
	Output     string `json:"output,omitempty"` // the tail of stdout+stderr, at most MaxOutputBytes
	Error      string `json:"error,omitempty"`
}

var (
	nonceRE = regexp.MustCompile(`^[0-9a-f]{16,64}$`)
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$`)
	headRE  = regexp.MustCompile(`^` + regexp.QuoteMeta(FrameMark) + `(REPORT|SPEC) v1 len=([0-9]{1,10}) sha256=([0-9a-f]{64})==$`)
)

// Validate checks a spec against the protocol's bounds.
func (s *TestSpec) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: test spec: %s", ErrBadFrame, fmt.Sprintf(format, a...))
	}
	if s.Schema != TestSpecSchema {
		return bad("schema %q: this agent reads %s", clip(s.Schema), TestSpecSchema)
	}
	if !nameRE.MatchString(s.Test) {
		return bad("test name %q: 1-80 letters, digits, '.', '_' or '-'", clip(s.Test))
	}
	if !nonceRE.MatchString(s.Nonce) {
		return bad("nonce %q: 16-64 lowercase hex digits", clip(s.Nonce))
	}
	if len(s.Commands) > MaxCommands {
		return bad("%d commands, at most %d", len(s.Commands), MaxCommands)
	}
	seen := map[string]bool{}
	for i, c := range s.Commands {
		if !nameRE.MatchString(c.Name) || seen[c.Name] {
			return bad("command %d: name %q missing, malformed or repeated", i, clip(c.Name))
		}
		seen[c.Name] = true
		if c.Run == "" || len(c.Run) > maxCommandText || !utf8.ValidString(c.Run) || strings.ContainsRune(c.Run, 0) {
			return bad("command %q: run must be 1-%d bytes of UTF-8", c.Name, maxCommandText)
		}
		if c.ExpectExit < 0 || c.ExpectExit > 255 {
			return bad("command %q: expect_exit %d is not 0-255", c.Name, c.ExpectExit)
		}
		if c.TimeoutSec < 1 || c.TimeoutSec > 24*3600 {
			return bad("command %q: timeout %ds is not 1s-24h", c.Name, c.TimeoutSec)
		}
	}
	return nil
}

// Validate checks a report against the protocol's bounds (the drift part
// with Report.Validate).
func (r *TestReport) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: test report: %s", ErrBadFrame, fmt.Sprintf(format, a...))
	}
	if r.Schema != TestReportSchema {
		return bad("schema %q: this runner reads %s", clip(r.Schema), TestReportSchema)
	}
	if !nameRE.MatchString(r.Test) {
		return bad("test name %q is malformed", clip(r.Test))
	}
	if !nonceRE.MatchString(r.Nonce) {
		return bad("nonce %q is malformed", clip(r.Nonce))
	}
	if !ValidHostName(r.Host) {
		return bad("host %q is malformed", clip(r.Host))
	}
	if r.StartedAt.IsZero() || r.FinishedAt.Before(r.StartedAt) {
		return bad("started_at/finished_at missing or out of order")
	}
	if len(r.Error) > maxDetail || !utf8.ValidString(r.Error) {
		return bad("error longer than %d bytes or not UTF-8", maxDetail)
	}
	if r.Error == "" {
		if err := r.Drift.Validate(); err != nil {
			return bad("drift: %v", err)
		}
	}
	if len(r.Commands) > MaxCommands {
		return bad("%d command results, at most %d", len(r.Commands), MaxCommands)
	}
	for i, c := range r.Commands {
		if !nameRE.MatchString(c.Name) {
			return bad("command result %d: name %q is malformed", i, clip(c.Name))
		}
		if c.ExitCode < -1 || c.ExitCode > 255 || c.DurationMS < 0 {
			return bad("command %q: exit code %d or duration out of range", c.Name, c.ExitCode)
		}
		if len(c.Output) > MaxOutputBytes || !utf8.ValidString(c.Output) || len(c.Error) > maxDetail || !utf8.ValidString(c.Error) {
			return bad("command %q: output over %d bytes or not UTF-8", c.Name, MaxOutputBytes)
		}
	}
	return nil
}

// EncodeFrame renders v (a *TestSpec or *TestReport, validated first) as a frame.
func EncodeFrame(kind string, v interface{ Validate() error }) ([]byte, error) {
	if kind != FrameReport && kind != FrameSpec {
		return nil, fmt.Errorf("frame kind %q: use %s or %s", kind, FrameReport, FrameSpec)
	}
	if err := v.Validate(); err != nil {
		return nil, err
	}
	payload, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(payload) > MaxFrameBytes {
		return nil, fmt.Errorf("%w: %d bytes of %s, at most %d", ErrBadFrame, len(payload), kind, MaxFrameBytes)
	}
	sum := sha256.Sum256(payload)
	var b bytes.Buffer
	fmt.Fprintf(&b, "\n%s%s v1 len=%d sha256=%s==\n", FrameMark, kind, len(payload), hex.EncodeToString(sum[:]))
	b.Write(payload)
	b.WriteString("\n" + FrameEndLine + "\n")
	return b.Bytes(), nil
}

// DecodeFrame finds the first frame of kind in r (reading at most
// MaxScanBytes) and decodes its payload into v, refusing unknown fields, and
// validates it. Lines that are not frames (console noise) are skipped; a
// frame that starts but is wrong in any way is an ErrBadFrame error saying
// what is wrong. No frame at all gives ErrNoFrame.
func DecodeFrame(r io.Reader, kind string, v interface{ Validate() error }) error {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxScanBytes), 64<<10)
	prefix := FrameMark + kind + " "
	for {
		line, long, err := readLine(br)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: no %s frame in the serial output", ErrNoFrame, strings.ToLower(kind))
			}
			return err
		}
		if long {
			continue // noise longer than any header
		}
		i := strings.Index(line, prefix)
		if i < 0 {
			continue
		}
		m := headRE.FindStringSubmatch(line[i:])
		if m == nil || m[1] != kind {
			return fmt.Errorf("%w: bad %s header %q", ErrBadFrame, strings.ToLower(kind), clip(line[i:]))
		}
		n, _ := strconv.Atoi(m[2])
		if n <= 0 || n > MaxFrameBytes {
			return fmt.Errorf("%w: %s of %s bytes announced, at most %d (the guest's report is oversized)", ErrBadFrame, strings.ToLower(kind), m[2], MaxFrameBytes)
		}
		payload, long, err := readLine(br)
		if err != nil || long {
			return fmt.Errorf("%w: %s truncated or longer than announced (%d bytes)", ErrBadFrame, strings.ToLower(kind), n)
		}
		if len(payload) != n {
			return fmt.Errorf("%w: %s of %d bytes, %d announced", ErrBadFrame, strings.ToLower(kind), len(payload), n)
		}
		sum := sha256.Sum256([]byte(payload))
		if hex.EncodeToString(sum[:]) != m[3] {
			return fmt.Errorf("%w: %s checksum mismatch (corrupted on the serial line)", ErrBadFrame, strings.ToLower(kind))
		}
		end, long, err := readLine(br)
		if err != nil || long || end != FrameEndLine {
			return fmt.Errorf("%w: %s has no end line", ErrBadFrame, strings.ToLower(kind))
		}
		dec := json.NewDecoder(strings.NewReader(payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			return fmt.Errorf("%w: %s is not valid JSON of its schema: %v", ErrBadFrame, strings.ToLower(kind), err)
		}
		if dec.More() {
			return fmt.Errorf("%w: %s has data after its JSON value", ErrBadFrame, strings.ToLower(kind))
		}
		return v.Validate()
	}
}

// DecodeFrameFile is DecodeFrame of the file at path (a serial log, a saved
// report or spec).
func DecodeFrameFile(path, kind string, v interface{ Validate() error }) error {
	return decodeFrameFile(path, MaxScanBytes, kind, v)
}

func decodeFrameFile(path string, limit int64, kind string, v interface{ Validate() error }) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return DecodeFrame(io.LimitReader(f, limit), kind, v)
}

// SpecDisk returns the raw spec disk (SpecDiskBytes) holding frame, a spec
// frame from EncodeFrame, at offset 0.
func SpecDisk(frame []byte) ([]byte, error) {
	if len(frame) > specProbeBytes {
		return nil, fmt.Errorf("%w: a spec frame of %d bytes, at most %d", ErrBadFrame, len(frame), specProbeBytes)
	}
	disk := make([]byte, SpecDiskBytes)
	copy(disk, frame)
	return disk, nil
}

// readLine reads one line without its "\n" or "\r\n". A line longer than
// maxLine is consumed and reported as long (its text dropped).
func readLine(br *bufio.Reader) (string, bool, error) {
	var buf []byte
	long := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxLine {
			long = true
			buf = buf[:0]
		} else if !long {
			buf = append(buf, chunk...)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) && (len(buf) > 0 || long) {
			break // a last line without "\n"
		}
		return "", false, err
	}
	s := strings.TrimRight(string(buf), "\r\n")
	return s, long, nil
}

// SerialOptions configure one serial test run in the guest.
type SerialOptions struct {
	// Port is the serial device the report is written to (default /dev/ttyS1).
	Port string
	// Spec is the spec disk or file; "" or "auto" searches the block devices.
	Spec string
	// SysRoot is where /sys and /dev are looked up for "auto" (default "/").
	SysRoot string
}

// NewLocal makes an agent that only checks this machine and writes serial
// reports (no server, no token): Root, Host and Platform as New fills them
// in, except that a machine without a host name reports as "localhost".
func NewLocal(opts Options) (*Agent, error) {
	if err := opts.machine("localhost"); err != nil {
		return nil, err
	}
	return &Agent{opts: opts}, nil
}

// DefaultSerialPort is COM2: the console keeps COM1.
const DefaultSerialPort = "/dev/ttyS1"

// RunSerialTest reads the spec, runs the drift check (full) and the
// declared commands, and writes the report frame to the port. It returns the
// report; the error is non-nil only when no report could be written.
func (a *Agent) RunSerialTest(ctx context.Context, so SerialOptions) (TestReport, error) {
	if so.Port == "" {
		so.Port = DefaultSerialPort
	}
	rep := TestReport{Schema: TestReportSchema, Host: a.opts.Host, StartedAt: time.Now().UTC()}
	spec, err := FindSpec(so.Spec, so.SysRoot)
	if err != nil {
		// still report, so the runner says why instead of timing out
		rep.Test, rep.Nonce = "unknown", strings.Repeat("0", 16)
		rep.Error = Cut("read the test spec: "+err.Error(), maxDetail)
	} else {
		rep.Test, rep.Nonce = spec.Test, spec.Nonce
		rep.Drift, _ = a.Check(ctx, drift.Full)
		for _, c := range spec.Commands {
			rep.Commands = append(rep.Commands, runCommand(ctx, c))
		}
	}
	rep.FinishedAt = time.Now().UTC()
	frame, ferr := encodeReportFitting(&rep)
	if ferr != nil {
		return rep, ferr
	}
	f, err := os.OpenFile(so.Port, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return rep, fmt.Errorf("open the serial port: %w (give --report-to serial:PATH)", err)
	}
	if _, err := f.Write(frame); err != nil {
		f.Close()
		return rep, fmt.Errorf("write the report to %s: %w", so.Port, err)
	}
	// a tty cannot fsync (EINVAL); a file or pipe can
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		f.Close()
		return rep, fmt.Errorf("flush %s: %w", so.Port, err)
	}
	return rep, f.Close()
}

// encodeReportFitting frames the report, dropping drift findings and then
// command output until it fits.
func encodeReportFitting(rep *TestReport) ([]byte, error) {
	for range 32 {
		b, err := EncodeFrame(FrameReport, rep)
		if err == nil || !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), "at most") {
			return b, err
		}
		switch {
		case len(rep.Drift.Changes) > 0:
			n := len(rep.Drift.Changes) / 2
			rep.Drift.Truncated += len(rep.Drift.Changes) - n
			rep.Drift.Changes = rep.Drift.Changes[:n]
		default:
			for i := range rep.Commands {
				rep.Commands[i].Output = Cut(rep.Commands[i].Output, len(rep.Commands[i].Output)/2)
			}
		}
	}
	return nil, errors.New("the test report does not fit in a frame")
}

// runCommand runs one declared command with its timeout, keeping the tail of
// its combined output.
func runCommand(ctx context.Context, c TestCommand) CommandResult {
	res := CommandResult{Name: c.Name, ExitCode: -1}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(c.TimeoutSec)*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	if _, err := os.Stat("/bin/sh"); err == nil {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", c.Run)
	} else {
		cmd = exec.CommandContext(ctx, "cmd", "/c", c.Run)
	}
	out := &tailBuffer{max: MaxOutputBytes}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 2 * time.Second
	start := time.Now()
	err := cmd.Run()
	res.DurationMS = time.Since(start).Milliseconds()
	res.Output = out.String()
	var ee *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		res.TimedOut = true
		res.Error = fmt.Sprintf("did not finish within %ds", c.TimeoutSec)
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
		if res.ExitCode < 0 || res.ExitCode > 255 {
			res.ExitCode = -1
			res.Error = Cut(ee.Error(), maxDetail)
		}
	case err != nil:
		res.Error = Cut(err.Error(), maxDetail)
	default:
		res.ExitCode = 0
	}
	return res
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
		for len(b) > 0 && !utf8.RuneStart(b[0]) {
			b = b[1:]
		}
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// specProbeBytes is how much of a block device is read looking for a spec.
const specProbeBytes = MaxFrameBytes + 4096

// FindSpec reads the test spec from path, or with "" / "auto" from the first
// block device (under sysRoot's /sys/block) whose start holds a spec frame.
func FindSpec(path, sysRoot string) (*TestSpec, error) {
	if path != "" && path != "auto" {
		return readSpec(path)
	}
	if sysRoot == "" {
		sysRoot = "/"
	}
	ents, err := os.ReadDir(filepath.Join(sysRoot, "sys", "block"))
	if err != nil {
		return nil, fmt.Errorf("list block devices: %w (give --test-spec PATH)", err)
	}
	var tried []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "sr") || strings.HasPrefix(n, "zram") {
			continue
		}
		dev := filepath.Join(sysRoot, "dev", n)
		s, err := readSpec(dev)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, ErrNoFrame) {
			return nil, fmt.Errorf("%s: %w", dev, err)
		}
		tried = append(tried, n)
	}
	return nil, fmt.Errorf("no spec disk attached (looked at %s)", strings.Join(tried, ", "))
}

func readSpec(path string) (*TestSpec, error) {
	var s TestSpec
	if err := decodeFrameFile(path, specProbeBytes, FrameSpec, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
