package drift

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// resolveInRoot turns rel (slash-separated, relative to root) into a host path
// inside root, resolving symlinks as if root were "/" (an absolute target such
// as /usr/lib/os-release means root/usr/lib/os-release, and ".." never climbs
// above root). Components that do not exist are kept as they are, so the
// result can be used to create a file.
func resolveInRoot(root, rel string) (string, error) {
	var done []string
	todo := splitSlash(rel)
	hops := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		p := filepath.Join(root, filepath.Join(done...), c)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			done = append(done, c)
			for _, t := range todo {
				if t != "" && t != "." && t != ".." {
					done = append(done, t)
				}
			}
			break
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", rel)
		}
		target, err := os.Readlink(p)
		if err != nil {
			return "", err
		}
		target = filepath.ToSlash(target)
		if strings.HasPrefix(target, "/") {
			done = nil
		}
		todo = append(splitSlash(target), todo...)
	}
	return filepath.Join(root, filepath.Join(done...)), nil
}

func splitSlash(p string) []string { return strings.Split(filepath.ToSlash(p), "/") }
