package drift

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"imgpipe/internal/atomicfile"
)

// StateDir is where imgpipe keeps the identity and baseline inside a tree:
// etc/imgpipe on Linux, ProgramData/imgpipe on Windows.
func StateDir(root string) string {
	if isWindowsTree(root) {
		return "ProgramData/imgpipe"
	}
	return "etc/imgpipe"
}

// IdentityPath is the host path of the identity file inside root.
func IdentityPath(root string) (string, error) {
	return resolveInRoot(root, StateDir(root)+"/identity.json")
}

// BaselinePath is the host path of the baseline file inside root.
func BaselinePath(root string) (string, error) {
	return resolveInRoot(root, StateDir(root)+"/baseline.bin")
}

func isWindowsTree(root string) bool {
	if _, err := os.Lstat(filepath.Join(root, "etc")); err == nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(root, "Windows", "System32"))
	return err == nil && fi.IsDir()
}

// IdentityResult says which files WriteIdentity wrote.
type IdentityResult struct {
	IdentityFile string `json:"identity_file"`
	// OSRelease is the os-release file that got IMAGE_ID and IMAGE_VERSION
	// (the real file, when etc/os-release is a symlink); empty when the tree
	// has none (Windows).
	OSRelease string `json:"os_release,omitempty"`
}

// WriteIdentity writes id into the tree at root: the identity file, and the
// IMAGE_ID and IMAGE_VERSION fields of os-release (every other line kept).
// When etc/os-release is a symlink (usually to ../usr/lib/os-release) the file
// it points to inside root is edited and the link is kept; a link never leads
// out of root. Every file is replaced atomically.
func WriteIdentity(root string, id Identity) (IdentityResult, error) {
	var res IdentityResult
	if id.Image == "" || id.Version == "" {
		return res, errors.New("identity needs an image name and a version")
	}
	for _, v := range []string{id.Image, id.Version, id.BuildID, id.CatalogID} {
		if strings.ContainsAny(v, "\n\r\x00") {
			return res, fmt.Errorf("identity value %q contains a line break or NUL", v)
		}
	}
	p, err := IdentityPath(root)
	if err != nil {
		return res, fmt.Errorf("locate identity file in %s: %w", root, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return res, fmt.Errorf("create %s: %w", filepath.Dir(p), err)
	}
	data, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return res, err
	}
	if err := atomicfile.WriteFile(p, append(data, '\n'), 0o644); err != nil {
		return res, err
	}
	res.IdentityFile = p
	for _, rel := range []string{"etc/os-release", "usr/lib/os-release"} {
		osr, err := resolveInRoot(root, rel)
		if err != nil {
			return res, fmt.Errorf("locate %s in %s: %w", rel, root, err)
		}
		fi, err := os.Stat(osr)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return res, err
		}
		if !fi.Mode().IsRegular() {
			return res, fmt.Errorf("%s is not a regular file", osr)
		}
		old, err := os.ReadFile(osr)
		if err != nil {
			return res, err
		}
		out := editOSRelease(old, map[string]string{
			"IMAGE_ID":      osReleaseImageID(id.Image),
			"IMAGE_VERSION": id.Version,
		})
		f, err := atomicfile.Create(osr, fi.Mode().Perm())
		if err != nil {
			return res, err
		}
		defer f.Abort()
		chownLike(f.File, fi)
		if _, err := f.Write(out); err != nil {
			return res, fmt.Errorf("write %s: %w", osr, err)
		}
		if err := f.Commit(); err != nil {
			return res, err
		}
		res.OSRelease = osr
		break
	}
	return res, nil
}

// ReadIdentity reads the identity file of the tree at root.
func ReadIdentity(root string) (*Identity, error) {
	p, err := IdentityPath(root)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read image identity: %w (was the image built with `imgpipe baseline capture`?)", err)
	}
	var id Identity
	if err := json.Unmarshal(data, &id); err != nil {
		return nil, fmt.Errorf("image identity %s: %w", p, err)
	}
	return &id, nil
}

// osReleaseImageID maps an image name to os-release's IMAGE_ID alphabet
// (lower-case letters, digits, ".", "_" and "-").
func osReleaseImageID(name string) string {
	b := []byte(strings.ToLower(name))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}

// editOSRelease sets the given keys, replacing existing assignments in place
// and appending missing ones; other lines (comments included) are kept.
func editOSRelease(old []byte, set map[string]string) []byte {
	lines := strings.SplitAfter(string(old), "\n")
	seen := map[string]bool{}
	var out bytes.Buffer
	for _, l := range lines {
		if l == "" {
			continue
		}
		key, _, ok := strings.Cut(strings.TrimLeft(l, " \t"), "=")
		if v, want := set[key]; ok && want {
			if seen[key] {
				continue // drop duplicates: the first assignment is the one we own
			}
			seen[key] = true
			fmt.Fprintf(&out, "%s=%s\n", key, shellQuote(v))
			continue
		}
		out.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			out.WriteByte('\n')
		}
	}
	for _, k := range []string{"IMAGE_ID", "IMAGE_VERSION"} {
		if v, ok := set[k]; ok && !seen[k] {
			fmt.Fprintf(&out, "%s=%s\n", k, shellQuote(v))
		}
	}
	return out.Bytes()
}

// shellQuote quotes v for os-release (a shell-compatible assignment).
func shellQuote(v string) string {
	safe := v != ""
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-+:~/", c)) {
			safe = false
			break
		}
	}
	if safe {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	return `"` + r.Replace(v) + `"`
}
