package onprem_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/disk/disktest"
	"imgpipe/internal/onprem"
	"imgpipe/internal/testenv"
)

// TestAddQcow2: a qcow2 (compressed, as Packer's qemu builder can leave it)
// is added as a VHDX identical to it per qemu-img; stored as it is, it is
// refused (Hyper-V cannot use a qcow2) and nothing is added.
func TestAddQcow2(t *testing.T) {
	testenv.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	disktest.WriteRaw(t, raw, 64<<20, []byte(strings.Repeat("a qcow2 for the Hyper-V library\n", 40000)), 9<<20)
	src := filepath.Join(dir, "packer-web")
	if out, err := exec.Command("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", raw, src).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	l, err := onprem.Open(filepath.Join(dir, "lib"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.AddFile(context.Background(), src, onprem.AddOptions{Image: "web", Version: "1.0.0", Generation: "V1", OS: "linux", Convert: "vhdx"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Metadata.Format != "vhdx" || res.Metadata.InputFormat != "qcow2" {
		t.Fatalf("stored %s from %s", res.Metadata.Format, res.Metadata.InputFormat)
	}
	out, err := exec.Command("qemu-img", "compare", "-f", "qcow2", "-F", "vhdx", src, res.Path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "identical") {
		t.Fatalf("qemu-img compare: %v\n%s", err, out)
	}
	if _, err := l.AddFile(context.Background(), src, onprem.AddOptions{Image: "web", Version: "1.0.1", Generation: "V1", OS: "linux"}); err == nil || !strings.Contains(err.Error(), "qcow2") {
		t.Fatalf("stored as qcow2: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "lib", "web", "1.0.1")); !os.IsNotExist(err) {
		t.Fatalf("a refused version left a folder: %v", err)
	}
}
