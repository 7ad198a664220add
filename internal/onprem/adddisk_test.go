package onprem

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/disk/disktest"
	"imgpipe/internal/progress"
)

// TestAddDiskNeedsGeneration: a disk whose partition table does not tell
// needs a declared generation; a declared one contradicting the table is
// refused. (Moved from the CLI's TestOnpremAddNeedsGeneration.)
func TestAddDiskNeedsGeneration(t *testing.T) {
	dir := t.TempDir()
	blank := filepath.Join(dir, "blank.raw")
	os.WriteFile(blank, make([]byte, 1<<20), 0o644)
	lib, err := Open(filepath.Join(dir, "lib"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := AddDisk(t.Context(), lib, DiskRequest{Path: blank, Image: "x", Version: "1"}); err == nil || !strings.Contains(err.Error(), "--generation") {
		t.Errorf("add of a disk without a partition table = %v, want a request for --generation", err)
	}
	res, info, err := AddDisk(t.Context(), lib, DiskRequest{Path: blank, Image: "x", Version: "1", Generation: "V2"})
	if err != nil {
		t.Fatalf("with --generation: %v", err)
	}
	if res.Metadata.Generation != "V2" || info.Generation != "V2" || res.Metadata.OS != "linux" || res.Metadata.Format != "vhdx" {
		t.Errorf("added %+v, source %+v", res.Metadata, info)
	}
	// the fallback (a manifest's custom_data) after the declared one
	manifest := func(disk, gen string) string {
		p := filepath.Join(t.TempDir(), "packer-manifest.json")
		os.WriteFile(p, []byte(`{"last_run_uuid":"run-1","builds":[{"packer_run_uuid":"run-1","files":[{"name":"`+disk+`"}],"custom_data":{"generation":"`+gen+`","os":"windows"}}]}`), 0o644)
		return p
	}
	if res, _, err := AddDisk(t.Context(), lib, DiskRequest{Manifest: manifest(blank, "V1"), Image: "x", Version: "1b", Keep: true}); err != nil || res.Metadata.Generation != "V1" || res.Metadata.Format != "raw" || res.Metadata.OS != "windows" {
		t.Errorf("fallback generation, kept format: %+v, %v", res, err)
	}
	if _, _, err := AddDisk(t.Context(), lib, DiskRequest{Manifest: manifest(blank, "V1"), Path: blank, Image: "x", Version: "1c"}); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("FILE and --manifest: %v", err)
	}
	if _, _, err := AddDisk(t.Context(), lib, DiskRequest{Image: "x", Version: "1c"}); err == nil || !strings.Contains(err.Error(), "nothing to add") {
		t.Errorf("neither FILE nor --manifest: %v", err)
	}
	boot := filepath.Join(dir, "boot.raw")
	disktest.WriteRaw(t, boot, 2<<20, []byte("x"), 1<<20)
	if _, _, err := AddDisk(t.Context(), lib, DiskRequest{Path: boot, Image: "x", Version: "2", Generation: "V2"}); err == nil || !strings.Contains(err.Error(), "contradicts") {
		t.Errorf("--generation contradicting the disk = %v", err)
	}
	// the partition table wins over the fallback; the fingerprint names the Packer run
	res, _, err = AddDisk(t.Context(), lib, DiskRequest{Manifest: manifest(boot, "V2"), OS: "linux", Image: "x", Version: "3"})
	if err != nil || res.Metadata.Generation != "V1" || res.Metadata.OS != "linux" || res.Metadata.SourceFingerprint != "packer-run:run-1 sha256:"+res.Metadata.InputSHA256 {
		t.Errorf("add with a readable partition table: %+v, %v", res, err)
	}
}

func TestDiskFromManifest(t *testing.T) {
	dir := t.TempDir()
	disk1, disk2 := filepath.Join(dir, "a.raw"), filepath.Join(dir, "b.raw")
	disktest.WriteRaw(t, disk1, 2<<20, []byte("a"), 1<<20)
	disktest.WriteRaw(t, disk2, 2<<20, []byte("b"), 1<<20)
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "packer-manifest.json")
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	one := write(`{"last_run_uuid":"r2","builds":[
		{"packer_run_uuid":"r1","files":[{"name":"` + disk2 + `"}]},
		{"packer_run_uuid":"r2","files":[{"name":"` + disk1 + `"},{"name":"` + filepath.Join(dir, "missing.txt") + `"}],"custom_data":{"generation":"V2","os":"windows"}}]}`)
	md, err := DiskFromManifest(one)
	if err != nil || md.Path != disk1 || md.RunID != "r2" || md.CustomData["generation"] != "V2" || md.CustomData["os"] != "windows" {
		t.Errorf("DiskFromManifest = %+v, %v", md, err)
	}
	two := write(`{"builds":[{"files":[{"name":"` + disk1 + `"},{"name":"` + disk2 + `"}]}]}`)
	if _, err := DiskFromManifest(two); err == nil || !strings.Contains(err.Error(), "several disks") {
		t.Errorf("two disks: %v", err)
	}
	none := write(`{"builds":[{"files":[]}]}`)
	if _, err := DiskFromManifest(none); err == nil || !strings.Contains(err.Error(), "no disk image") {
		t.Errorf("no disk: %v", err)
	}
	if _, err := DiskFromManifest(filepath.Join(dir, "nope.json")); err == nil {
		t.Error("a missing manifest was read")
	}
}

func TestParseMemorySize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"2GB", 2 << 30}, {"4096MB", 4 << 30}, {"1GiB", 1 << 30}, {"512m", 512 << 20}, {"1073741824", 1 << 30}, {"x", 0}, {"-1GB", 0}, {"", 0}} {
		got, err := ParseMemorySize(tc.in)
		if (err != nil) != (tc.want == 0) || got != tc.want {
			t.Errorf("ParseMemorySize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// TestVerifyAll: every version, one image, one version; a corrupted disk is
// a failed result, not an error.
func TestVerifyAll(t *testing.T) {
	dir := t.TempDir()
	lib, err := Open(filepath.Join(dir, "lib"))
	if err != nil {
		t.Fatal(err)
	}
	raw := filepath.Join(dir, "web.raw")
	disktest.WriteRaw(t, raw, 4<<20, []byte("web"), 1<<20)
	for _, v := range []string{"1.0", "1.1"} {
		if _, _, err := AddDisk(t.Context(), lib, DiskRequest{Path: raw, Image: "web", Version: v, Keep: true}); err != nil {
			t.Fatal(err)
		}
	}
	var steps []string
	rs, err := lib.VerifyAll(t.Context(), "", "", func(name string) progress.Func { steps = append(steps, name); return nil })
	if err != nil || len(rs) != 2 || !rs[0].OK || !rs[1].OK || strings.Join(steps, ",") != "verify web 1.0,verify web 1.1" {
		t.Fatalf("VerifyAll = %+v, %v (steps %v)", rs, err, steps)
	}
	p := filepath.Join(lib.Root(), "web", "1.1", "web-1.1.raw")
	b, _ := os.ReadFile(p)
	b[1<<20] ^= 1
	os.WriteFile(p, b, 0o644)
	rs, err = lib.VerifyAll(t.Context(), "web", "", nil)
	if err != nil || len(rs) != 2 || !rs[0].OK || rs[1].OK || !strings.HasPrefix(rs[1].Text(), "FAILED   web 1.1: ") || rs[0].Text() != "ok       web 1.0\n" {
		t.Fatalf("after corruption: %+v, %v", rs, err)
	}
	if rs, err := lib.VerifyAll(t.Context(), "web", "1.0", nil); err != nil || len(rs) != 1 || !rs[0].OK {
		t.Fatalf("one version: %+v, %v", rs, err)
	}
	if _, err := lib.VerifyAll(t.Context(), "nope", "", nil); err == nil {
		t.Fatal("verify of an unknown image succeeded")
	}
	// (view.LibraryImages draws the rows; its test holds the table)
	if in := mustList(t, lib); len(in) != 1 || in[0].Image != "web" || len(in[0].Versions) != 2 || in[0].Latest != in[0].Versions[1].Version || len(in[0].Channels) != 0 {
		t.Fatalf("List = %+v", in)
	}
}

func mustList(t *testing.T, l *Library) []ImageInfo {
	t.Helper()
	infos, err := l.List()
	if err != nil {
		t.Fatal(err)
	}
	return infos
}
