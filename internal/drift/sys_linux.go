//go:build linux

package drift

import (
	"errors"
	"hash"
	"io/fs"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysStat is what the walk needs from lstat/fstat.
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

func fromUnix(st *unix.Stat_t) sysStat {
	s := sysStat{
		perm:  st.Mode & 0o7777,
		uid:   st.Uid,
		gid:   st.Gid,
		size:  st.Size,
		mtime: st.Mtim.Nano(),
		ctime: st.Ctim.Nano(),
		dev:   st.Dev,
		ino:   st.Ino,
		nlink: uint32(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		s.typ = TypeRegular
	case unix.S_IFDIR:
		s.typ = TypeDir
	case unix.S_IFLNK:
		s.typ = TypeSymlink
	case unix.S_IFIFO:
		s.typ = TypeFIFO
	case unix.S_IFSOCK:
		s.typ = TypeSocket
	case unix.S_IFCHR:
		s.typ, s.rdev = TypeCharDev, st.Rdev
	case unix.S_IFBLK:
		s.typ, s.rdev = TypeBlockDev, st.Rdev
	}
	return s
}

// dirHandle is an open directory. Entries are looked up relative to it
// (openat/fstatat), so a directory renamed or replaced by a symlink while
// it is walked cannot redirect the walk elsewhere. It is shared by the tasks
// that work in it and closed when the last one releases it.
type dirHandle struct {
	fd   int
	refs atomic.Int32
}

func (d *dirHandle) acquire() { d.refs.Add(1) }
func (d *dirHandle) release() {
	if d.refs.Add(-1) == 0 {
		unix.Close(d.fd)
	}
}

func openRootDir(root string) (*dirHandle, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: root, Err: err}
	}
	d := &dirHandle{fd: fd}
	d.refs.Store(1)
	return d, nil
}

// openDir opens the subdirectory name without following a symlink.
func (d *dirHandle) openDir(name string) (*dirHandle, sysStat, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, sysStat{}, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, sysStat{}, err
	}
	nd := &dirHandle{fd: fd}
	nd.refs.Store(1)
	return nd, fromUnix(&st), nil
}

// names lists the directory (without "." and "..").
func (d *dirHandle) names(buf []byte) ([]string, error) {
	var names []string
	for {
		n, err := unix.ReadDirent(d.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return names, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

func (d *dirHandle) lstat(name string) (sysStat, error) {
	var st unix.Stat_t
	for {
		err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return sysStat{}, err
		}
		return fromUnix(&st), nil
	}
}

func (d *dirHandle) readlink(name string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlinkat(d.fd, name, buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		if len(buf) >= 1<<16 {
			return "", errors.New("symlink target longer than 64 KiB")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// hashFile opens name (never following a symlink, never blocking on a FIFO),
// checks it is still the regular file lstat saw, hashes it and checks it did
// not change while being read. It returns the file's stat after reading.
func (d *dirHandle) hashFile(name string, want sysStat, h hash.Hash, buf []byte) (sysStat, [HashSize]byte, error) {
	var sum [HashSize]byte
	var fd int
	var err error
	for {
		fd, err = unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return want, sum, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return want, sum, err
	}
	before := fromUnix(&st)
	if before.typ != TypeRegular || before.ino != want.ino || before.dev != want.dev {
		return before, sum, errReplaced
	}
	h.Reset()
	var total int64
	// Read up to the size fstat gave, without the extra read that would
	// only see end-of-file: growth during the read shows in the fstat below.
	for total < before.size {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			h.Write(buf[:n])
			total += int64(n)
		}
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return before, sum, err
		}
		if n == 0 {
			break
		}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		return before, sum, err
	}
	after := fromUnix(&st)
	if total != after.size || after.size != before.size || after.mtime != before.mtime || after.ctime != before.ctime {
		return after, sum, errChanged
	}
	h.Sum(sum[:0])
	return after, sum, nil
}

func isNotExist(err error) bool { return errors.Is(err, unix.ENOENT) || errors.Is(err, fs.ErrNotExist) }

func chownLike(f *os.File, fi os.FileInfo) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		_ = f.Chown(int(st.Uid), int(st.Gid))
	}
}
