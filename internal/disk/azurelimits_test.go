package disk

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sparseFixedVHD writes a fixed VHD of virtual size bytes as a sparse file:
// head at 0 (a partition table), the footer at the end.
func sparseFixedVHD(t *testing.T, dir, name string, size int64, head []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(head, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(NewFixedFooter(size, [16]byte{3}, time.Now()).Marshal(), size); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckAzureSizeLimits: `disk check --azure` said a 10 TiB fixed VHD was
// ready. Azure's page blob (8 TiB) and OS disk (4,095 GiB; 2 TiB for
// generation 1) limits are findings now.
func TestCheckAzureSizeLimits(t *testing.T) {
	dir := t.TempDir()
	mbr := make([]byte, 512)
	mbr[0] = 0xEB // boot code: generation 1
	mbr[510], mbr[511] = 0x55, 0xAA
	gpt := gptDisk(espType)
	cases := []struct {
		name   string
		size   int64
		head   []byte
		checks []string
	}{
		{"10 TiB", 10 << 40, gpt, []string{"page-blob-size", "os-disk-size"}},
		{"8 TiB exactly (no room for the footer)", 8 << 40, gpt, []string{"page-blob-size", "os-disk-size"}},
		{"5 TiB", 5 << 40, gpt, []string{"os-disk-size"}},
		{"4095 GiB, generation 2", 4095 << 30, gpt, nil},
		{"4095 GiB + 1 MiB", 4095<<30 + 1<<20, gpt, []string{"os-disk-size"}},
		{"3 TiB, generation 1", 3 << 40, mbr, []string{"os-disk-size"}},
		{"2 TiB, generation 1", 2 << 40, mbr, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := sparseFixedVHD(t, dir, "d.vhd", c.size, c.head)
			defer os.Remove(p)
			r, err := CheckAzureVHD(p)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range r.Findings {
				got = append(got, f.Check)
				if f.Fix == "" || f.Message == "" {
					t.Errorf("finding %+v lacks a message or a fix", f)
				}
			}
			if strings.Join(got, ",") != strings.Join(c.checks, ",") {
				t.Fatalf("findings %v, want %v (%+v)", got, c.checks, r.Findings)
			}
			if r.Ready != (len(c.checks) == 0) {
				t.Fatalf("ready = %v with findings %v", r.Ready, got)
			}
		})
	}
}

func TestCheckAzureUploadSize(t *testing.T) {
	const ft = footerSize
	cases := []struct {
		vhd    int64
		target UploadTarget
		ok     bool
	}{
		{8<<40 - 1<<20 + ft, UploadPageBlob, true},
		{8<<40 + ft, UploadPageBlob, false},
		{64<<40 + ft, UploadPageBlob, false},
		{32<<40 + ft, UploadManagedDisk, true},
		{32<<40 + 1<<20 + ft, UploadManagedDisk, false},
		{20<<20 + ft, UploadManagedDisk, true},
		{19<<20 + ft, UploadManagedDisk, false},
		{1<<20 + ft, UploadPageBlob, true},
	}
	for _, c := range cases {
		err := CheckAzureUploadSize(c.vhd, c.target)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrTooLarge)) {
			t.Errorf("CheckAzureUploadSize(%d, %s) = %v, want ok=%v", c.vhd, c.target, err, c.ok)
		}
	}
	if err := CheckAzureUploadSize(1<<30, "tape"); err == nil || errors.Is(err, ErrTooLarge) {
		t.Errorf("unknown target: %v", err)
	}
	for _, c := range []struct {
		vhd int64
		gen Generation
		ok  bool
	}{
		{4095<<30 + ft, GenerationV2, true},
		{4095<<30 + ft, "", true},
		{4096<<30 + ft, GenerationV2, false},
		{2<<40 + ft, GenerationV1, true},
		{2<<40 + 1<<20 + ft, GenerationV1, false},
		{2<<40 + 1<<20 + ft, GenerationV2, true},
	} {
		err := CheckAzureOSDiskSize(c.vhd, c.gen)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrTooLarge)) {
			t.Errorf("CheckAzureOSDiskSize(%d, %q) = %v, want ok=%v", c.vhd, c.gen, err, c.ok)
		}
	}
}
