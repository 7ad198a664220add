package drift

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const dpkgStatus = `Package: base-files
Status: install ok installed
Priority: required
Architecture: amd64
Version: 12.4+deb12u5
Description: Debian base system miscellaneous files
 This package contains the basic filesystem hierarchy.

Package: openssh-server
Status: install ok installed
Architecture: amd64
Version: 1:9.2p1-2+deb12u2
Conffiles:
 /etc/ssh/moduli 0123
Description: secure shell (SSH) server

Package: old-removed
Status: deinstall ok config-files
Architecture: all
Version: 1.0

`

func sampleBaseline() *Baseline {
	b := &Baseline{
		Identity:   &Identity{Image: "web", Version: "1.0", BuildID: "b1"},
		Hash:       HashBLAKE3,
		Rules:      Rules{Paths: []string{"etc"}, Exclude: []string{"var/log/**"}},
		CapturedAt: time.Unix(1700000000, 123).UTC(),
		Platform:   "linux",
		Packages:   []Package{{Manager: "dpkg", Name: "bash", Version: "5.2", Arch: "amd64"}},
		Services:   []Service{{Unit: "ssh.service", State: "enabled", WantedBy: []string{"multi-user.target"}}},
		Collectors: []CollectorStatus{{Name: "dpkg", Status: CollectorOK}},
		Problems:   []Problem{{Path: "etc/\xff", Err: "permission denied"}},
	}
	b.Files = []Entry{
		{Path: "etc", Type: TypeDir, Mode: 0o755, Mtime: 1, Ctime: 2, Ino: 10, Nlink: 3},
		{Path: "etc/a", Type: TypeRegular, Mode: 0o644, UID: 1000, GID: 1000, Size: 5, Mtime: -5, Ctime: 1 << 62, Ino: 11, Nlink: 1, HasHash: true, Hash: [32]byte{1, 2, 3}},
		{Path: "etc/ab", Type: TypeSymlink, Mode: 0o777, Size: 3, Link: "a\xfe", Ino: 12, Nlink: 1},
		{Path: "etc/caf\xe9", Type: TypeRegular, Mode: 0o4755, Err: "permission denied", Ino: 13, Nlink: 2},
		{Path: "etc/null", Type: TypeCharDev, Mode: 0o666, Rdev: 259, Ino: 14, Nlink: 1},
	}
	return b
}

func TestBaselineRoundTrip(t *testing.T) {
	b := sampleBaseline()
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var back Baseline
	if err := back.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b, &back) {
		t.Errorf("round trip:\n got %+v\nwant %+v", &back, b)
	}
	// Unsorted files are refused at write time.
	b.Files[0], b.Files[1] = b.Files[1], b.Files[0]
	if _, err := b.MarshalBinary(); err == nil {
		t.Error("unsorted files written")
	}
}

func TestBaselineDecodeRejects(t *testing.T) {
	good, _ := sampleBaseline().MarshalBinary()
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a valid"},
		{"bad magic", append([]byte("NOT-A-BASELINE!!"), good[16:]...), "bad magic"},
		{"future version", append(append([]byte{}, good[:16]...), append([]byte{9}, good[17:]...)...), "version 9"},
		{"truncated", good[:len(good)-5], "not a valid"},
		{"garbage after magic", append(append([]byte{}, good[:17]...), "garbage"...), "not a valid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadBaseline(bytes.NewReader(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func FuzzReadBaseline(f *testing.F) {
	good, _ := sampleBaseline().MarshalBinary()
	f.Add(good)
	f.Add(good[:40])
	empty, _ := (&Baseline{Hash: HashSHA256}).MarshalBinary()
	f.Add(empty)
	f.Add([]byte(baselineMagic + "\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ReadBaseline(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever decodes must encode again and decode to the same thing.
		again, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded baseline does not re-encode: %v", err)
		}
		b2, err := ReadBaseline(bytes.NewReader(again))
		if err != nil {
			t.Fatalf("re-encoded baseline does not decode: %v", err)
		}
		if len(b2.Files) != len(b.Files) {
			t.Fatalf("files %d != %d", len(b2.Files), len(b.Files))
		}
	})
}

// The raw record decoder, fuzzed without the zstd layer so the fuzzer reaches it.
func FuzzDecodeRecords(f *testing.F) {
	var raw bytes.Buffer
	meta := []byte(`{"hash":"blake3","rules":{"paths":["."]}}`)
	raw.Write(binary.AppendUvarint(nil, uint64(len(meta))))
	raw.Write(meta)
	raw.Write(binary.AppendUvarint(nil, 2))
	for i, p := range []string{"a", "ab"} {
		shared := 0
		if i == 1 {
			shared = 1
		}
		raw.Write(binary.AppendUvarint(nil, uint64(shared)))
		raw.Write(binary.AppendUvarint(nil, uint64(len(p)-shared)))
		raw.WriteString(p[shared:])
		raw.Write([]byte{byte(TypeRegular), flagHash | flagLink})
		for range 7 {
			raw.WriteByte(1)
		}
		raw.Write([]byte{2, 4})
		raw.Write(make([]byte, 32))
		raw.Write([]byte{1, 'x'})
	}
	raw.WriteString(trailer)
	f.Add(raw.Bytes())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &decoder{r: bufioReader(data)}
		_, _ = d.baseline()
	})
}

func TestParseDpkgStatus(t *testing.T) {
	pkgs, err := ParseDpkgStatus(strings.NewReader(dpkgStatus + "Package: half\nStatus: install ok half-configured\nVersion: 2\nArchitecture: all\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Package{
		{Manager: "dpkg", Name: "base-files", Version: "12.4+deb12u5", Arch: "amd64"},
		{Manager: "dpkg", Name: "half", Version: "2", Arch: "all", Status: "half-configured"},
		{Manager: "dpkg", Name: "openssh-server", Version: "1:9.2p1-2+deb12u2", Arch: "amd64"},
	}
	if !reflect.DeepEqual(pkgs, want) {
		t.Errorf("got %+v\nwant %+v", pkgs, want)
	}
	if _, err := ParseDpkgStatus(strings.NewReader("Package: x\nno colon here\n")); err == nil {
		t.Error("malformed status accepted")
	}
}

func FuzzParseDpkgStatus(f *testing.F) {
	f.Add([]byte(dpkgStatus))
	f.Add([]byte("Package: a\n\n\n Status: x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pkgs, err := ParseDpkgStatus(bytes.NewReader(data))
		if err == nil {
			for _, p := range pkgs {
				if p.Name == "" {
					t.Fatal("package without a name")
				}
			}
		}
	})
}

// rpmHeader builds an rpm header blob (as stored in rpmdb.sqlite).
func rpmHeader(name, version, release, arch string, epoch int) []byte {
	type ent struct {
		tag, typ uint32
		data     []byte
	}
	var ents []ent
	str := func(tag uint32, s string) { ents = append(ents, ent{tag, rpmTypeString, append([]byte(s), 0)}) }
	ents = append(ents, ent{63, 7, make([]byte, 16)}) // region tag, skipped
	str(rpmTagName, name)
	str(rpmTagVersion, version)
	str(rpmTagRelease, release)
	if epoch >= 0 {
		ents = append(ents, ent{rpmTagEpoch, rpmTypeInt32, binary.BigEndian.AppendUint32(nil, uint32(epoch))})
	}
	str(rpmTagArch, arch)
	var index, data []byte
	for _, e := range ents {
		for e.typ == rpmTypeInt32 && len(data)%4 != 0 {
			data = append(data, 0)
		}
		index = binary.BigEndian.AppendUint32(index, e.tag)
		index = binary.BigEndian.AppendUint32(index, e.typ)
		index = binary.BigEndian.AppendUint32(index, uint32(len(data)))
		index = binary.BigEndian.AppendUint32(index, 1)
		data = append(data, e.data...)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(len(ents)))
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	return append(append(out, index...), data...)
}

func TestParseRPMHeader(t *testing.T) {
	tests := []struct {
		blob    []byte
		want    Package
		wantErr bool
	}{
		{rpmHeader("bash", "5.2.26", "3.fc40", "x86_64", -1), Package{Manager: "rpm", Name: "bash", Version: "5.2.26-3.fc40", Arch: "x86_64"}, false},
		{rpmHeader("openssl", "3.2.1", "2.fc40", "x86_64", 1), Package{Manager: "rpm", Name: "openssl", Version: "1:3.2.1-2.fc40", Arch: "x86_64"}, false},
		{rpmHeader("x", "1", "1", "noarch", -1)[:20], Package{}, true},
		{[]byte{0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}, Package{}, true},
		{nil, Package{}, true},
	}
	for i, tc := range tests {
		got, err := ParseRPMHeader(tc.blob)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("%d: got %+v, %v; want %+v (error %v)", i, got, err, tc.want, tc.wantErr)
		}
	}
}

func FuzzParseRPMHeader(f *testing.F) {
	f.Add(rpmHeader("bash", "5.2", "1", "x86_64", 2))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) { _, _ = ParseRPMHeader(data) })
}

// A real SQLite rpmdb, written with the same driver, read by the collector.
func TestCollectRPMSQLite(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "var/lib/rpm")
	os.MkdirAll(dir, 0o755)
	u := url.URL{Scheme: "file", Path: filepath.Join(dir, "rpmdb.sqlite")}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	for _, h := range [][]byte{rpmHeader("zlib", "1.3", "1.el9", "x86_64", -1), rpmHeader("bash", "5.1.8", "9.el9", "x86_64", -1)} {
		if _, err := db.ExecContext(ctx, "INSERT INTO Packages (blob) VALUES (?)", h); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	pkgs, st := collectRPM(root)
	if st.Status != CollectorOK || len(pkgs) != 2 || pkgs[0].Name != "bash" || pkgs[1].Version != "1.3-1.el9" {
		t.Fatalf("collectRPM: %+v %+v", pkgs, st)
	}
	if _, err := os.Stat(filepath.Join(dir, "rpmdb.sqlite-wal")); err == nil {
		t.Error("reading the rpmdb created a -wal file in the image")
	}
	// A Berkeley DB rpmdb is named, not silently skipped.
	root2 := t.TempDir()
	os.MkdirAll(filepath.Join(root2, "var/lib/rpm"), 0o755)
	os.WriteFile(filepath.Join(root2, "var/lib/rpm/Packages"), []byte("bdb"), 0o644)
	if _, st := collectRPM(root2); st.Status != CollectorNotImplemented {
		t.Errorf("Berkeley DB rpmdb: %+v", st)
	}
	if _, st := collectRPM(t.TempDir()); st.Status != CollectorAbsent {
		t.Errorf("no rpmdb: %+v", st)
	}
}

func TestGlobs(t *testing.T) {
	tests := []struct {
		pat, name string
		want      bool
	}{
		{"var/log/**", "var/log", true},
		{"var/log/**", "var/log/syslog", true},
		{"var/log/**", "var/logs", false},
		{"var/log", "var/log/x", true}, // a literal covers what is below it
		{"*.pyc", "usr/lib/a.pyc", true},
		{"*.pyc", "a.pyc", true},
		{"usr/*/doc/**", "usr/share/doc/x/y", true},
		{"usr/*/doc/**", "usr/share/x/doc", false},
		{"**/__pycache__/**", "usr/lib/python3/__pycache__/a.pyc", true},
		{"etc/**/*.conf", "etc/a/b/c.conf", true},
		{"etc/**/*.conf", "etc/c.conf", true},
		{"etc/**/*.conf", "etc/c.confx", false},
		{"/etc/passwd", "etc/passwd", true},
	}
	for _, tc := range tests {
		g, err := compileGlob(tc.pat)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.match(tc.name); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pat, tc.name, got, tc.want)
		}
	}
	if _, err := compileGlob("etc/[x"); err == nil {
		t.Error("bad glob accepted")
	}
	m, _ := newMatcher(nil, []string{"var/log"})
	if !m.underExcluded("var/log/a/b") || m.underExcluded("var/lib") {
		t.Error("underExcluded")
	}
}

func TestCleanPaths(t *testing.T) {
	got, err := cleanPaths([]string{"usr/lib", "/etc/", "usr", "etc"})
	if err != nil || fmt.Sprint(got) != "[etc usr]" {
		t.Errorf("got %v %v", got, err)
	}
	if got, _ := cleanPaths([]string{"etc", "."}); fmt.Sprint(got) != "[.]" {
		t.Errorf("got %v", got)
	}
	if _, err := cleanPaths([]string{"../etc"}); err == nil {
		t.Error("path leaving the root accepted")
	}
}

func TestNameJSON(t *testing.T) {
	for _, n := range []Name{"etc/passwd", "etc/caf\xe9", "\xff\xfe", "ünïcode"} {
		data, err := n.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		var back Name
		if err := back.UnmarshalJSON(data); err != nil || back != n {
			t.Errorf("%q -> %s -> %q (%v)", n, data, back, err)
		}
	}
	if got := Name("a\xffb").String(); got != `a\xffb` {
		t.Errorf("String: %q", got)
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
