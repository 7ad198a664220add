package disk

// The disk verbs' flows, one call each for the CLI: inspect a file,
// convert a file, and the answers as rows and text.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"imgpipe/internal/units"
)

// Inspection is what imgpipe disk inspect reports of an image file.
type Inspection struct {
	Path string `json:"path"`
	Info
	AllocatedBytes int64      `json:"allocated_bytes"`
	Generation     string     `json:"generation,omitempty"`
	GenerationNote string     `json:"generation_note,omitempty"`
	Azure          *Readiness `json:"azure"`
}

// Inspect reads the image at path (its structures, never its unallocated
// space): format and sizes, allocated bytes, the Hyper-V generation its
// partition table implies, and whether Azure accepts the file as it is.
func Inspect(ctx context.Context, path string) (*Inspection, error) {
	img, err := OpenContext(ctx, path)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	r := &Inspection{Path: path}
	if d, ok := img.(Describer); ok {
		r.Info = d.Info()
	} else {
		r.Info = Info{Format: img.Format(), VirtualSize: img.Size()}
	}
	ext, err := img.Extents()
	if err != nil {
		return nil, fmt.Errorf("read allocation map: %w", err)
	}
	r.AllocatedBytes = AllocatedBytes(ext)
	if g, err := DetectGeneration(img); err == nil {
		r.Generation = string(g)
	} else {
		r.GenerationNote = err.Error()
	}
	if r.Azure, err = CheckAzureVHD(path); err != nil {
		return nil, err
	}
	return r, nil
}

// Rows is the inspection as PROPERTY, VALUE rows.
func (r *Inspection) Rows() [][]string {
	rows := [][]string{
		{"format", string(r.Format)},
		{"virtual size", units.Exact(r.VirtualSize)},
		{"file size", units.Exact(r.FileSize)},
		{"allocated", units.Exact(r.AllocatedBytes)},
	}
	if r.BlockSize > 0 {
		rows = append(rows, []string{"block size", units.Exact(r.BlockSize)})
	}
	rows = append(rows, []string{"sector size", fmt.Sprintf("%d logical, %d physical", r.LogicalSectorSize, r.PhysicalSectorSize)})
	if r.Format == FormatQcow2 {
		v := fmt.Sprintf("%d, compressed clusters: %s", r.FormatVersion, r.Compression)
		if r.ExtendedL2 {
			v += ", extended L2 (subclusters)"
		}
		rows = append(rows, []string{"qcow2 version", v})
	}
	for _, w := range r.Warnings {
		rows = append(rows, []string{"warning", w})
	}
	if r.DiskID != "" {
		rows = append(rows, []string{"disk id", r.DiskID})
	}
	if r.LeaveBlocksAllocated {
		rows = append(rows, []string{"vhdx type", "fixed (blocks left allocated)"})
	}
	if r.LogReplayed {
		rows = append(rows, []string{"log", "replayed in memory (file not modified; open it in Hyper-V to replay it for good)"})
	}
	gen := r.Generation
	if gen == "" {
		gen = "unknown (" + r.GenerationNote + ")"
	}
	ready := "no"
	if r.Azure.Ready {
		ready = "yes"
	}
	return append(rows, []string{"generation", gen}, []string{"azure ready", ready})
}

// FindingsText is one line per finding, each followed by its fix.
func (r *Readiness) FindingsText() string {
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%s: %s: %s\n", f.Severity, f.Check, f.Message)
		if f.Fix != "" {
			fmt.Fprintf(&b, "  fix: %s\n", f.Fix)
		}
	}
	return b.String()
}

// ParseOutputFormat reads the format a conversion writes: vhd-fixed, vhdx
// or raw.
func ParseOutputFormat(to string) (Format, error) {
	f := Format(strings.ToLower(to))
	switch f {
	case FormatVHDFixed, FormatVHDX, FormatRaw:
		return f, nil
	case "":
		return "", errors.New("--to is required: vhd-fixed, vhdx or raw")
	}
	return "", fmt.Errorf("--to %q is not supported: use vhd-fixed, vhdx or raw", to)
}

// ConvertPath opens the image at in (honouring ctx), passes its warnings to
// warn (when set) before it starts, and converts it to out (see Convert).
func ConvertPath(ctx context.Context, in, out string, opt ConvertOptions, warn func(string)) (*ConvertResult, error) {
	src, err := OpenContext(ctx, in)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	if d, ok := src.(Describer); ok && warn != nil {
		for _, w := range d.Info().Warnings {
			warn(w)
		}
	}
	return Convert(ctx, src, out, opt)
}

// Text says what a conversion wrote, for people.
func (r *ConvertResult) Text(out string) string {
	var b strings.Builder
	for _, p := range r.RemovedPartial {
		fmt.Fprintf(&b, "removed %s, left by an earlier conversion that was killed\n", p)
	}
	fmt.Fprintf(&b, "wrote %s: %s, virtual size %s, %s of data\n", out, r.Format, units.Exact(r.VirtualSize), units.Exact(r.DataBytes))
	return b.String()
}
