package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/testenv"
)

// TestDiskFormatsThroughTheBinary runs the real imgpipe binary: a qcow2 is
// inspected with its real virtual size and allocation and converts to an
// Azure-ready VHD identical per qemu-img; a VMDK and a text file are refused
// with exit status 1, the command to use, and no output file.
func TestDiskFormatsThroughTheBinary(t *testing.T) {
	qemu := testenv.RequireTool(t, "qemu-img")
	goTool := testenv.RequireTool(t, "go")
	dir := t.TempDir()
	bin := filepath.Join(dir, "imgpipe")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	imgpipe := func(args ...string) (stdout, stderr string, code int) {
		cmd := exec.Command(bin, args...)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	q := func(args ...string) {
		if out, err := exec.Command(qemu, args...).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
		}
	}

	// a 3 GiB virtual qcow2 holding 2 MiB, compressed with zstd
	raw := filepath.Join(dir, "src.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(3 << 30)
	mbr := make([]byte, 512)
	mbr[510], mbr[511] = 0x55, 0xaa
	f.WriteAt(mbr, 0)
	f.WriteAt(bytes.Repeat([]byte("qcow2 through the CLI\n"), 100000), 1<<30)
	f.Close()
	qc := filepath.Join(dir, "x.qcow2")
	q("convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=zstd", raw, qc)

	out, errOut, code := imgpipe("disk", "inspect", "--output", "json", qc)
	if code != 0 {
		t.Fatalf("inspect qcow2: exit %d\n%s", code, errOut)
	}
	var insp struct {
		Format         string `json:"format"`
		VirtualSize    int64  `json:"virtual_size"`
		AllocatedBytes int64  `json:"allocated_bytes"`
		Compression    string `json:"compression"`
	}
	if err := json.Unmarshal([]byte(out), &insp); err != nil {
		t.Fatalf("inspect json: %v\n%s", err, out)
	}
	if insp.Format != "qcow2" || insp.VirtualSize != 3<<30 || insp.AllocatedBytes == 0 || insp.AllocatedBytes > 4<<20 || insp.Compression != "zstd" {
		t.Fatalf("inspect qcow2: %+v", insp)
	}
	if out, _, _ = imgpipe("disk", "inspect", qc); !strings.Contains(out, "qcow2") || !strings.Contains(out, "3.00 GiB") {
		t.Fatalf("inspect table:\n%s", out)
	}
	vhd := filepath.Join(dir, "x.vhd")
	if _, errOut, code = imgpipe("disk", "convert", qc, vhd, "--to", "vhd-fixed"); code != 0 {
		t.Fatalf("convert qcow2: exit %d\n%s", code, errOut)
	}
	if cmp, err := exec.Command(qemu, "compare", "-f", "qcow2", "-F", "vpc", qc, vhd).CombinedOutput(); err != nil || !strings.Contains(string(cmp), "identical") {
		t.Fatalf("qemu-img compare: %v %s", err, cmp)
	}

	vmdk := filepath.Join(dir, "x.vmdk")
	q("convert", "-f", "raw", "-O", "vmdk", raw, vmdk)
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not a disk\njust some notes\n"), 0o644)
	for _, c := range []struct{ in, want string }{
		{vmdk, "qemu-img convert -f vmdk -O vhdx -o subformat=dynamic " + vmdk + " " + filepath.Join(dir, "x.vhdx")},
		{text, "a text file, not a disk image"},
	} {
		for _, args := range [][]string{
			{"disk", "inspect", c.in},
			{"disk", "convert", c.in, c.in + ".vhd", "--to", "vhd-fixed"},
			{"disk", "convert", c.in, c.in + ".vhdx", "--to", "vhdx"},
		} {
			stdout, stderr, code := imgpipe(args...)
			if code != 1 || !strings.Contains(stderr, c.want) {
				t.Fatalf("imgpipe %v: exit %d, stderr %q; want exit 1 saying %q", args, code, stderr, c.want)
			}
			if stdout != "" {
				t.Fatalf("imgpipe %v printed a result: %q", args, stdout)
			}
		}
		for _, out := range []string{c.in + ".vhd", c.in + ".vhdx"} {
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatalf("%s was written (%v)", out, err)
			}
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if strings.Contains(e.Name(), ".tmp") {
				t.Fatalf("temporary file left: %s", e.Name())
			}
		}
	}
}
