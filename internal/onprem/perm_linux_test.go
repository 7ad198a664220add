package onprem

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestLibraryPermissions: folders and files of the library are readable by
// other accounts (Hyper-V hosts read the share as another user), less what
// the umask takes away. Before, version folders were 0700 (MkdirTemp).
func TestLibraryPermissions(t *testing.T) {
	for _, tc := range []struct {
		mask      int
		dir, file fs.FileMode
	}{{0o022, 0o755, 0o644}, {0o027, 0o750, 0o640}} {
		old := syscall.Umask(tc.mask)
		l := newLib(t)
		path := writeInput(t, pattern(2<<20, 3))
		for _, convert := range []string{"", "vhdx"} {
			v := "1" + convert
			if _, err := l.AddFile(context.Background(), path, AddOptions{Image: "web", Version: v, Channels: []string{"test"},
				Convert: convert, Generation: "V1", OS: "linux"}); err != nil {
				syscall.Umask(old)
				t.Fatal(err)
			}
		}
		syscall.Umask(old)
		filepath.WalkDir(filepath.Join(l.Root(), "web"), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := d.Info()
			want := tc.file
			if d.IsDir() {
				want = tc.dir
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("umask %03o: %s has mode %03o, want %03o", tc.mask, p, got, want)
			}
			return nil
		})
		if _, err := os.Stat(filepath.Join(l.Root(), "web", "1vhdx", "web-1vhdx.vhdx")); err != nil {
			t.Error(err)
		}
	}
}
