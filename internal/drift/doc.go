// Package drift gives an image an identity and a configuration baseline at
// build time, and later tells how far a running system has moved from it.
//
// # What is captured
//
// [Capture] walks the configured paths under a root (the image's file system,
// mounted or live) and records, for every entry: type, permission bits, owner
// (uid/gid), size, mtime, ctime, inode, link count, the target of symlinks and a
// strong content hash of regular files (BLAKE3 by default, SHA-256 on request).
// It also records installed packages (read from dpkg's status file and rpm's
// SQLite database directly, never through the package manager) and the
// enabled/disabled state of systemd units (read from the unit directories and
// the *.wants/*.requires links, never through systemctl). Collectors that do
// not exist on a platform or in a tree say so in [CollectorStatus] rather than
// failing or staying silent.
//
// The baseline is stored in a compact binary format (see [Baseline.WriteTo]):
// path names are raw bytes, so names that are not valid UTF-8 survive the
// round trip; in JSON (reports) such names are carried as base64 (see [Name]).
//
// # Walking awkward trees
//
// Symlinks are recorded with their target and never followed. FIFOs, sockets
// and devices are recorded by type and never opened. Regular files are opened
// relative to their directory with O_NOFOLLOW|O_NONBLOCK and the opened file is
// checked with fstat against the entry seen by lstat, so a file swapped for a
// FIFO or symlink between the two calls is reported instead of blocking or
// being followed. Hard links are hashed once per (device, inode). Unreadable
// entries and entries that change or vanish during the walk are reported as
// [Problem]s; they never stop the walk.
//
// # Full and quick checks, and what the quick check trusts
//
// A full check ([Check] with Depth [Full]) hashes every regular file. A quick
// check ([Quick]) follows git's index model: a file whose size, mtime, ctime and
// inode number all equal the baseline's is trusted to have the baseline's
// content and is not read; any difference makes it re-hashed. This is sound as
// long as (1) the kernel's ctime cannot be set by user space — it is updated by
// every write, chmod, chown, rename and link, and cannot be set by utimes, so
// restoring mtime after editing a file does not hide the edit — and (2) the
// baseline itself was not tampered with. It does not hold against someone who
// can change the system clock around a write, edit the block device directly,
// or restore a file together with its inode and ctime (for example a file
// system snapshot rollback); run a full check when those are in scope.
//
// Racy timestamps: a file modified within the same timestamp tick as the
// baseline's stat of it (or shortly before a coarse-grained file system records
// it) could change again without any visible stat change. As git does with
// "racily clean" entries, the capture records when it started, and a quick
// check always re-hashes files whose mtime or ctime is not at least
// [RacyWindow] older than that moment.
//
// The device number is not part of the comparison: it legitimately changes
// when an image's disk is attached to a different controller.
package drift
