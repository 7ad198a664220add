package disk

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/disk/disktest"
)

// TestInspectConvertFlows: inspect a raw disk (rows, Azure findings), the
// --to grammar, a conversion to a fixed VHD that Azure accepts, and the
// warnings of a raw file without a partition table reach warn before the
// conversion.
func TestInspectConvertFlows(t *testing.T) {
	ctx := t.Context()
	// a sparse raw disk: a BIOS boot sector and some data at 3 MiB (moved from the CLI's diskFixture)
	raw := filepath.Join(t.TempDir(), "disk.raw")
	disktest.WriteRaw(t, raw, 5<<20+512, bytes.Repeat([]byte("imgpipe"), 5000), 3<<20)
	r, err := Inspect(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != FormatRaw || r.VirtualSize != 5<<20+512 || r.Generation != "V1" || r.Azure.Ready || r.AllocatedBytes == 0 || r.AllocatedBytes > 1<<20 {
		t.Fatalf("Inspect = %+v", r)
	}
	rows := map[string]string{}
	for _, row := range r.Rows() {
		rows[row[0]] = row[1]
	}
	if rows["format"] != "raw" || rows["virtual size"] != "5.00 MiB (5243392 bytes)" || rows["generation"] != "V1" || rows["azure ready"] != "no" || rows["sector size"] != "512 logical, 512 physical" {
		t.Errorf("rows %q", rows)
	}
	if ft := r.Azure.FindingsText(); !strings.Contains(ft, "error: ") || !strings.Contains(ft, "\n  fix: ") {
		t.Errorf("findings text:\n%s", ft)
	}
	if _, err := Inspect(ctx, filepath.Join(t.TempDir(), "missing.vhdx")); err == nil {
		t.Error("inspect of a missing file succeeded")
	}

	for in, want := range map[string]Format{"vhd-fixed": FormatVHDFixed, "VHDX": FormatVHDX, "raw": FormatRaw} {
		if f, err := ParseOutputFormat(in); err != nil || f != want {
			t.Errorf("ParseOutputFormat(%q) = %q, %v", in, f, err)
		}
	}
	if _, err := ParseOutputFormat(""); err == nil || !strings.Contains(err.Error(), "--to is required") {
		t.Errorf("empty --to: %v", err)
	}
	if _, err := ParseOutputFormat("qcow2"); err == nil || !strings.Contains(err.Error(), "vhd-fixed, vhdx or raw") {
		t.Errorf("--to qcow2: %v", err)
	}

	vhd := filepath.Join(t.TempDir(), "disk.vhd")
	var warned []string
	res, err := ConvertPath(ctx, raw, vhd, ConvertOptions{To: FormatVHDFixed}, func(w string) { warned = append(warned, w) })
	if err != nil || len(warned) != 0 || !strings.HasPrefix(res.Text(vhd), "wrote "+vhd+": vhd-fixed, virtual size 6.00 MiB (6291456 bytes), ") {
		t.Fatalf("ConvertPath = %+v, %v, warnings %v", res, err, warned)
	}
	if rd, err := CheckAzureVHD(vhd); err != nil || !rd.Ready || rd.FindingsText() != "" {
		t.Fatalf("the converted VHD: %+v, %v", rd, err)
	}
	blank := filepath.Join(t.TempDir(), "blank.raw")
	os.WriteFile(blank, make([]byte, 1<<20), 0o644)
	if _, err := ConvertPath(ctx, blank, blank+".vhdx", ConvertOptions{To: FormatVHDX}, func(w string) { warned = append(warned, w) }); err != nil || len(warned) == 0 {
		t.Fatalf("a raw file without a partition table: %v, warnings %v", err, warned)
	}
}
