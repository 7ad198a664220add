// Package disk reads and writes the virtual disk formats an image pipeline
// meets: VHDX (MS-VHDX), VHD (fixed and dynamic), qcow2 (v2 and v3, read
// only) and raw images. Every format is seen through one small interface,
// Image: a virtual size, random-access reads, and an allocation map (the
// extents that may hold data) so that later stages never scan or send
// unallocated space. Other formats are recognised and refused (FormatError).
//
// On top of Image the package builds the streaming Azure-ready fixed VHD view
// (AzureVHD), the Azure readiness check (CheckAzureVHD), Hyper-V generation
// detection (DetectGeneration) and a sparse, bounded-memory converter
// (Convert).
//
// Nothing here prints; progress is reported through internal/progress.
package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
)

// Format names a disk image format.
type Format string

// The formats this package reads (and, except vhd-dynamic, writes).
const (
	FormatRaw        Format = "raw"
	FormatVHDFixed   Format = "vhd-fixed"
	FormatVHDDynamic Format = "vhd-dynamic"
	FormatVHDX       Format = "vhdx"
)

// Extent is a byte range of a virtual disk.
type Extent struct{ Offset, Length int64 }

// End returns the offset just past the extent.
func (e Extent) End() int64 { return e.Offset + e.Length }

// Image is a virtual disk opened for reading.
type Image interface {
	io.ReaderAt // reads past Size() return io.EOF; unallocated ranges read as zeros
	// Size is the virtual size in bytes.
	Size() int64
	Format() Format
	// Extents returns sorted, non-overlapping ranges that MAY hold data;
	// everything outside them reads as zeros.
	Extents() ([]Extent, error)
	Close() error
}

// Info is what inspection reports about an image beyond the Image interface.
type Info struct {
	Format             Format `json:"format"`
	VirtualSize        int64  `json:"virtual_size"`
	BlockSize          int64  `json:"block_size,omitempty"`
	LogicalSectorSize  int64  `json:"logical_sector_size"`
	PhysicalSectorSize int64  `json:"physical_sector_size"`
	FileSize           int64  `json:"file_size"`
	// LeaveBlocksAllocated is the VHDX "fixed" flag.
	LeaveBlocksAllocated bool `json:"leave_blocks_allocated,omitempty"`
	// LogReplayed is true when a VHDX with a non-empty log was opened by
	// replaying the log in memory (the file itself was not changed).
	LogReplayed bool `json:"log_replayed,omitempty"`
	// DiskID is the VHD unique id or the VHDX virtual disk id, when the format has one.
	DiskID string `json:"disk_id,omitempty"`
	// FormatVersion, Compression and ExtendedL2 describe a qcow2 (version 2
	// or 3, zlib or zstd compressed clusters, subclusters).
	FormatVersion int    `json:"format_version,omitempty"`
	Compression   string `json:"compression,omitempty"`
	ExtendedL2    bool   `json:"extended_l2,omitempty"`
	// Warnings are doubts about the image that do not stop its use (a raw
	// file without a partition table, for example); the CLI shows them.
	Warnings []string `json:"warnings,omitempty"`
}

// Describer is implemented by the images this package opens.
type Describer interface{ Info() Info }

// ErrUnsupported marks images that are valid but not handled (differencing
// disks, for example). Test with errors.Is.
var ErrUnsupported = errors.New("unsupported disk image")

// ErrCorrupt marks images whose structures are damaged or inconsistent.
var ErrCorrupt = errors.New("corrupt disk image")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

// Limits that keep absurd headers from turning into absurd allocations.
const (
	maxVirtualSize = 64 << 40 // VHDX maximum: 64 TiB
	maxTableBytes  = 64 << 20 // largest BAT kept in memory
	mib            = 1 << 20
)

// Open opens a disk image, detecting its format from its content: a VHDX file
// identifier or a qcow2 magic at the start, a VHD footer ("conectix") at the
// end, or else raw. Other formats (VMDK, VDI, QED, ISO, archives, text,
// files too small to be a disk, a VHDX or VHD with a damaged signature) are
// refused with a *FormatError that says what to run instead.
func Open(path string) (Image, error) { return OpenContext(context.Background(), path) }

// OpenContext is Open with a context that bounds the structural checks done
// while opening (a qcow2's tables are walked once).
func OpenContext(ctx context.Context, path string) (Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open disk image: %w", err)
	}
	img, err := openFile(ctx, f)
	if err != nil {
		f.Close()
		var fe *FormatError
		if errors.As(err, &fe) && fe.Path == "" {
			fe.Path = path
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// DetectFormat reports the format of the file at path without validating it fully.
func DetectFormat(path string) (Format, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	return detect(f, st.Size())
}

func detect(r io.ReaderAt, size int64) (Format, error) {
	f, _, err := sniff(r, size)
	return f, err
}

func openFile(ctx context.Context, f *os.File) (Image, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: not a regular file (block devices are not supported yet; use a file)", ErrUnsupported)
	}
	return openBackingContext(ctx, fileBacking{f}, st.Size())
}

func openBacking(f backing, size int64) (Image, error) {
	return openBackingContext(context.Background(), f, size)
}

func openBackingContext(ctx context.Context, f backing, size int64) (Image, error) {
	format, head, err := sniff(f, size)
	if err != nil {
		return nil, err
	}
	switch format {
	case FormatVHDX:
		return openVHDX(ctx, f, size)
	case FormatVHDFixed, FormatVHDDynamic, "vhd-differencing":
		return openVHD(ctx, f, size)
	case FormatQcow2:
		return openQcow2(ctx, f, size)
	case FormatRaw:
		img, err := openRaw(f, size)
		if r, ok := img.(*rawImage); ok && err == nil {
			r.info.Warnings = rawWarnings(f, size, head)
		}
		return img, err
	default:
		return nil, refusal(format, head)
	}
}

// readFull is ReadAt that treats a short read at EOF as an error.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// clampRead limits a read of len(p) bytes at off to the virtual size and
// reports the error a ReaderAt must return.
func clampRead(p []byte, off, size int64) ([]byte, error) {
	if off < 0 {
		return nil, errors.New("negative offset")
	}
	if off >= size {
		if len(p) == 0 {
			return p[:0], nil
		}
		return nil, io.EOF
	}
	if int64(len(p)) > size-off {
		return p[:size-off], io.EOF
	}
	return p, nil
}

func zero(p []byte) { clear(p) }

// AllocatedBytes sums the lengths of extents.
func AllocatedBytes(ext []Extent) int64 {
	var n int64
	for _, e := range ext {
		n += e.Length
	}
	return n
}

// normalize sorts extents, drops empty ones, clips them to [0,size) and merges
// neighbours.
func normalize(ext []Extent, size int64) []Extent {
	sort.Slice(ext, func(i, j int) bool { return ext[i].Offset < ext[j].Offset })
	out := ext[:0]
	for _, e := range ext {
		if e.Offset < 0 {
			e.Length += e.Offset
			e.Offset = 0
		}
		if e.End() > size {
			e.Length = size - e.Offset
		}
		if e.Length <= 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].End() >= e.Offset {
			if e.End() > out[n-1].End() {
				out[n-1].Length = e.End() - out[n-1].Offset
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// appendExtent adds e to a list kept sorted by construction, merging with
// the last element when they touch.
func appendExtent(ext []Extent, e Extent) []Extent {
	if e.Length <= 0 {
		return ext
	}
	if n := len(ext); n > 0 && ext[n-1].End() == e.Offset {
		ext[n-1].Length += e.Length
		return ext
	}
	return append(ext, e)
}

var zeroPage [64 << 10]byte

// isZero reports whether p holds only zero bytes.
func isZero(p []byte) bool {
	for len(p) > 0 {
		n := min(len(p), len(zeroPage))
		if !bytes.Equal(p[:n], zeroPage[:n]) {
			return false
		}
		p = p[n:]
	}
	return true
}
