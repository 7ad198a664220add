//go:build !linux

package drift

import (
	"errors"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
)

// sysStat is what the walk needs from lstat. On platforms other than Linux
// it comes from os.Lstat: there is no owner, ctime, inode or link count
// (Windows has none of them in the portable API), so the quick check there
// trusts size and mtime only and hard links are hashed once per path.
type sysStat struct {
	typ          FileType
	perm         uint32
	uid, gid     uint32
	size         int64
	mtime, ctime int64
	dev, ino     uint64
	rdev         uint64
	nlink        uint32
}

func fromFileInfo(fi fs.FileInfo) sysStat {
	m := fi.Mode()
	s := sysStat{perm: uint32(m.Perm()), size: fi.Size(), mtime: fi.ModTime().UnixNano(), nlink: 1}
	if m&fs.ModeSetuid != 0 {
		s.perm |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		s.perm |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		s.perm |= 0o1000
	}
	switch {
	case m.IsRegular():
		s.typ = TypeRegular
	case m.IsDir():
		s.typ = TypeDir
		s.size = 0
	case m&fs.ModeSymlink != 0:
		s.typ = TypeSymlink
	case m&fs.ModeNamedPipe != 0:
		s.typ = TypeFIFO
	case m&fs.ModeSocket != 0:
		s.typ = TypeSocket
	case m&fs.ModeCharDevice != 0:
		s.typ = TypeCharDev
	case m&fs.ModeDevice != 0:
		s.typ = TypeBlockDev
	}
	return s
}

// dirHandle is a directory being walked, by path.
type dirHandle struct {
	path string
	refs atomic.Int32
}

func (d *dirHandle) acquire() { d.refs.Add(1) }
func (d *dirHandle) release() { d.refs.Add(-1) }

func openRootDir(root string) (*dirHandle, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: root, Err: errors.New("not a directory")}
	}
	d := &dirHandle{path: root}
	d.refs.Store(1)
	return d, nil
}

func (d *dirHandle) openDir(name string) (*dirHandle, sysStat, error) {
	p := filepath.Join(d.path, name)
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, sysStat{}, err
	}
	if !fi.IsDir() {
		return nil, sysStat{}, errReplaced
	}
	nd := &dirHandle{path: p}
	nd.refs.Store(1)
	return nd, fromFileInfo(fi), nil
}

func (d *dirHandle) names(buf []byte) ([]string, error) {
	f, err := os.Open(d.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (d *dirHandle) lstat(name string) (sysStat, error) {
	fi, err := os.Lstat(filepath.Join(d.path, name))
	if err != nil {
		return sysStat{}, err
	}
	return fromFileInfo(fi), nil
}

func (d *dirHandle) readlink(name string) (string, error) {
	return os.Readlink(filepath.Join(d.path, name))
}

func (d *dirHandle) hashFile(name string, want sysStat, h hash.Hash, buf []byte) (sysStat, [HashSize]byte, error) {
	var sum [HashSize]byte
	p := filepath.Join(d.path, name)
	f, err := os.Open(p)
	if err != nil {
		return want, sum, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return want, sum, err
	}
	before := fromFileInfo(fi)
	if before.typ != TypeRegular {
		return before, sum, errReplaced
	}
	h.Reset()
	n, err := io.CopyBuffer(h, f, buf)
	if err != nil {
		return before, sum, err
	}
	fi, err = f.Stat()
	if err != nil {
		return before, sum, err
	}
	after := fromFileInfo(fi)
	if n != after.size || after.size != before.size || after.mtime != before.mtime {
		return after, sum, errChanged
	}
	h.Sum(sum[:0])
	return after, sum, nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func chownLike(f *os.File, fi os.FileInfo) {}
