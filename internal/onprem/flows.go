package onprem

// The library's answers to the CLI verbs: the verification of many
// versions, a deploy script for a version or channel.

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"imgpipe/internal/progress"
)

// VerifyResult is the verification of one version's disk.
type VerifyResult struct {
	Image   string `json:"image"`
	Version string `json:"version"`
	OK      bool   `json:"ok"`
	Error   string `json:"error,omitempty"`
}

// Text is the result's line: "ok       web 1.0" or "FAILED   web 1.0: why".
func (r VerifyResult) Text() string {
	if r.OK {
		return fmt.Sprintf("ok       %s %s\n", r.Image, r.Version)
	}
	return fmt.Sprintf("FAILED   %s %s: %s\n", r.Image, r.Version, r.Error)
}

// Verification is the verification of several versions' disks.
type Verification []VerifyResult

// Text is one line per version.
func (v Verification) Text() string {
	var b strings.Builder
	for _, r := range v {
		b.WriteString(r.Text())
	}
	return b.String()
}

// Err is nil when every disk matched, else it says how many did not.
func (v Verification) Err() error {
	bad := 0
	for _, r := range v {
		if !r.OK {
			bad++
		}
	}
	if bad == 0 {
		return nil
	}
	return fmt.Errorf("%d of %d library disks failed verification", bad, len(v))
}

// VerifyAll re-reads the disks of every version in the library, of image
// when it is not "", or of image/version, and checks each against its
// metadata (see Verify). A disk that does not match is a result, not an
// error; the error is for a listing that fails or a cancelled context.
// step, when set, gives the progress function of each disk's read
// ("verify IMAGE VERSION").
func (l *Library) VerifyAll(ctx context.Context, image, version string, step func(name string) progress.Func) (Verification, error) {
	var targets []Metadata
	switch {
	case version != "":
		targets = []Metadata{{Image: image, Version: version}}
	case image != "":
		vs, err := l.Versions(image)
		if err != nil {
			return nil, err
		}
		targets = vs
	default:
		infos, err := l.List()
		if err != nil {
			return nil, err
		}
		for _, im := range infos {
			targets = append(targets, im.Versions...)
		}
	}
	results := Verification{}
	for _, tg := range targets {
		var bar progress.Func
		if step != nil {
			bar = step("verify " + tg.Image + " " + tg.Version)
		}
		err := l.Verify(ctx, tg.Image, tg.Version, bar)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r := VerifyResult{Image: tg.Image, Version: tg.Version, OK: err == nil}
		if err != nil {
			r.Error = err.Error()
		}
		results = append(results, r)
	}
	return results, nil
}

// DeployScriptFor is the deploy script (see DeployScript) of image at ref:
// a version, "latest" or a channel. o.HostLibraryPath defaults to the
// library's absolute path.
func (l *Library) DeployScriptFor(image, ref string, o DeployOptions) (string, error) {
	md, err := l.Resolve(image, ref)
	if err != nil {
		return "", err
	}
	if o.HostLibraryPath == "" {
		o.HostLibraryPath = l.Root()
		if abs, err := filepath.Abs(l.Root()); err == nil {
			o.HostLibraryPath = abs
		}
	}
	return DeployScript(md, o)
}

// ParseMemorySize reads "4GB", "4096MB", "4GiB" or a byte count. GB and MB
// are binary units, as in Hyper-V's PowerShell.
func ParseMemorySize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GIB", 1 << 30}, {"MIB", 1 << 20}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"G", 1 << 30}, {"M", 1 << 20}} {
		if v, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(v), u.m
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n <= 0 || n > (1<<44)/mult {
		return 0, fmt.Errorf("--memory %q: give a size like 2GB, 4096MB or a number of bytes", s)
	}
	return n * mult, nil
}
