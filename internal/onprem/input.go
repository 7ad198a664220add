package onprem

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"imgpipe/internal/atomicfile"
	"imgpipe/internal/disk"
	"imgpipe/internal/progress"
)

// AddFile adds the disk file at path as image/version, converting it to
// o.Convert's format when it is in another one.
//
// The input may change while it is read (a build still writing, a user
// copying over it): the version must then not be published. So AddFile
// takes a digest of the input first (o.InputSHA256, or one pass of its own),
// then copies the input into the version's staging folder while hashing
// every byte it reads, and goes on only when the two digests match. The
// stored disk is made from that private copy (converted from it, or the copy
// itself), so it is exactly the input whose digest is recorded. Nothing is
// renamed into place, no pointer moves, and the version name stays free
// until then; a mismatch returns ErrSourceChanged.
func (l *Library) AddFile(ctx context.Context, path string, o AddOptions) (*AddResult, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	if o.Convert != "" && o.Convert != string(disk.FormatVHDX) {
		return nil, fmt.Errorf("convert to %q: the library converts to vhdx only (or stores the input as it is)", o.Convert)
	}
	in, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() == 0 {
		return nil, errors.New("nothing to add: the source disk is empty")
	}
	step := func(name string) progress.Func {
		if o.Step != nil {
			return o.Step(name)
		}
		return o.Progress
	}
	hook := func(name string) func(int64) {
		if l.hook == nil {
			return nil
		}
		return func(off int64) { l.hook(name, off) }
	}

	// 1. The digest taken before.
	before := o.InputSHA256
	if before == "" {
		if before, _, err = hashOpen(ctx, in, step("hash input"), hook("hash input")); err != nil {
			return nil, fmt.Errorf("hash %s: %w", path, err)
		}
		o.InputSHA256 = before
	}
	if res, err := l.existing(ctx, o, func() (string, error) { return before, nil }); res != nil || err != nil {
		return res, err
	}

	// 2. The private copy, hashed as it is read.
	st, err := l.newStage(o.Image, o.Version)
	if err != nil {
		return nil, err
	}
	defer st.discard()
	snap := filepath.Join(st.dir, ".input")
	f, err := atomicfile.Create(snap, filePerm())
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	size := fi.Size()
	read, err := sparseCopy(ctx, f.File, in, size, step("copy input"), hook("copy input"))
	if err != nil {
		return nil, fmt.Errorf("copy %s into the library: %w", path, err)
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	if fi2, err := in.Stat(); err == nil && fi2.Size() != size {
		read = "" // grew or shrank while read: the copy is of the old length at best
	}
	if read != before {
		return nil, fmt.Errorf("%s: %w (sha256 %s before the copy, %s as copied): %s %s was not added; wait until whatever writes it is done (or rebuild), then add it again",
			path, ErrSourceChanged, before, cmp.Or(read, "of another length"), o.Image, o.Version)
	}

	// 3. What the private copy is, checked against what the caller saw.
	img, err := disk.Open(snap)
	if err != nil {
		return nil, err
	}
	inFormat, vsize := string(img.Format()), img.Size()
	gen, genErr := disk.DetectGeneration(img)
	img.Close()
	if o.VirtualSize != 0 && o.VirtualSize != vsize {
		return nil, fmt.Errorf("%s: %w since it was inspected (virtual size %d then, %d now): add it again", path, ErrSourceChanged, o.VirtualSize, vsize)
	}
	if genErr == nil && string(gen) != o.Generation {
		return nil, fmt.Errorf("%s: Generation %s contradicts the disk, whose partition table says %s", path, o.Generation, gen)
	}
	stored := inFormat
	if o.Convert != "" {
		stored = o.Convert
	}
	if o.Format != "" && o.Format != stored {
		return nil, fmt.Errorf("%s: %w since it was inspected (format %s then, %s now): add it again", path, ErrSourceChanged, o.Format, stored)
	}
	o.Format, o.VirtualSize = stored, vsize
	ext, err := checkFormat(stored)
	if err != nil {
		return nil, err
	}
	md := o.metadata(ext)
	md.InputFormat = inFormat
	out := filepath.Join(st.dir, md.DiskFile)

	// 4. The stored disk: the private copy itself, or its conversion.
	if stored == inFormat {
		if err := os.Rename(snap, out); err != nil {
			return nil, err
		}
		md.SHA256, md.FileSize = read, size
	} else {
		res, err := disk.ConvertFile(ctx, snap, out, disk.ConvertOptions{To: disk.Format(stored), Progress: step("convert to VHDX")})
		if err != nil {
			return nil, fmt.Errorf("convert %s to %s: %w", path, stored, err)
		}
		os.Remove(snap)
		if err := os.Chmod(out, filePerm()); err != nil {
			return nil, err
		}
		sum, n, err := hashFile(ctx, out, step("hash library copy"))
		if err != nil {
			return nil, err
		}
		if n != res.FileSize {
			return nil, fmt.Errorf("the converted %s has %d bytes, the converter said %d", out, n, res.FileSize)
		}
		md.SHA256, md.FileSize = sum, n
	}
	return l.commit(st, &md, o)
}

// syncDir flushes a directory's entries (a rename into it) to stable storage.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
