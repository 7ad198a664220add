package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/build"
	"imgpipe/internal/onprem"
	"imgpipe/internal/testenv"
)

// TestPackerHandsOffToImgpipe runs the real `packer build` on
// examples/packer/handoff through `imgpipe build`: the template's last
// post-processor calls `imgpipe onprem add --manifest ...`, so the disk lands
// in the library with no glue outside the template.
func TestPackerHandsOffToImgpipe(t *testing.T) {
	testenv.RequireTool(t, "packer")
	goTool := testenv.RequireTool(t, "go")
	bin := t.TempDir()
	gobuild := exec.Command(goTool, "build", "-o", filepath.Join(bin, "imgpipe"), ".")
	if out, err := gobuild.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	work := t.TempDir()
	lib := filepath.Join(work, "lib")
	tmpl, err := filepath.Abs("../../examples/packer/handoff")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("imgpipe", "build", tmpl, "--workdir", work, "--manifest", "out/packer-manifest.json",
		"--var", "library="+lib, "--var", "version=2.0.1", "--var", "image=web", "--output", "json")
	var stdoutBuf, stderrBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdoutBuf, &stderrBuf
	if err := cmd.Run(); err != nil {
		t.Fatalf("imgpipe build: %v\nstderr:\n%s", err, stderrBuf.String())
	}
	if !strings.Contains(stderrBuf.String(), "web 2.0.1 added") {
		t.Errorf("Packer's progress (with imgpipe onprem add's output) not streamed to stderr:\n%s", stderrBuf.String())
	}
	var res build.Result
	if err := json.Unmarshal(stdoutBuf.Bytes(), &res); err != nil {
		t.Fatalf("build --output json: %v\n%s", err, stdoutBuf.String())
	}
	if len(res.Artifacts) != 1 || res.Artifacts[0].Generation != "V1" || res.Artifacts[0].GenerationFrom != "disk" || res.Artifacts[0].Format != "raw" {
		t.Fatalf("artifacts = %+v", res.Artifacts)
	}
	if res.Provenance.GitCommit == "" || res.Provenance.GitPath != "examples/packer/handoff" || res.Provenance.PackerRunUUID == "" {
		t.Errorf("provenance = %+v", res.Provenance)
	}

	l, err := onprem.Open(lib)
	if err != nil {
		t.Fatal(err)
	}
	md, err := l.Resolve("web", "test")
	if err != nil {
		t.Fatalf("the template's hand-over did not reach the library: %v", err)
	}
	if md.Version != "2.0.1" || md.Format != "vhdx" || md.InputSHA256 != res.Artifacts[0].SHA256 ||
		!strings.Contains(md.SourceFingerprint, res.Provenance.PackerRunUUID) {
		t.Errorf("library metadata %+v does not match the build %+v", md, res.Artifacts[0])
	}

	// A failing build exits non-zero with Packer's own message.
	bad := filepath.Join(work, "bad.pkr.hcl")
	os.WriteFile(bad, []byte("source \"null\" \"x\" {\n  communicator = \"none\"\n}\nbuild {\n  sources = [\"source.null.x\"]\n  provisioner \"shell-local\" {\n    inline = [\"exit 7\"]\n  }\n}\n"), 0o644)
	cmd = exec.Command("imgpipe", "build", bad, "--workdir", work)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "imgpipe: packer build failed (exit status 1): null.x: Script exited with non-zero exit status: 7") {
		t.Errorf("failing build: %v\n%s", err, out)
	}
}

// TestDemoImageBoots builds the demo's real bootable Debian disk through
// Packer (examples/packer/demo-debian), hands it to the on-prem library,
// boots it in qemu (software emulation) until the login prompt, converts it to
// the fixed VHD Azure receives and boots that too. It needs root, network
// access to a Debian mirror, debootstrap, sfdisk, extlinux, a loop device and
// qemu-system-x86_64, and takes several minutes, so it runs only when asked:
//
//	sudo IMGPIPE_DEMO_IMAGE=1 go test -run TestDemoImageBoots -timeout 60m -v ./cmd/imgpipe
//
// DEMO_CACHE=/some/dir keeps the downloaded packages between runs.
func TestDemoImageBoots(t *testing.T) {
	if os.Getenv("IMGPIPE_DEMO_IMAGE") != "1" {
		t.Skip("slow (minutes, network): set IMGPIPE_DEMO_IMAGE=1 to build and boot the demo image")
	}
	if os.Geteuid() != 0 {
		t.Fatal("IMGPIPE_DEMO_IMAGE=1 needs root (debootstrap, loop device)")
	}
	for _, tool := range []string{"packer", "debootstrap", "sfdisk", "extlinux", "qemu-system-x86_64", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("IMGPIPE_DEMO_IMAGE=1 needs %s: %v", tool, err)
		}
	}
	bin := t.TempDir()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(bin, "imgpipe"), ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	work := t.TempDir()
	lib := filepath.Join(work, "lib")
	tmpl, _ := filepath.Abs("../../examples/packer/demo-debian")
	cmd := exec.Command("imgpipe", "build", tmpl, "--workdir", work, "--manifest", "out/demo-debian/packer-manifest.json",
		"--var", "version=1.0.0", "--var", "boot_check=true", "--var", "library="+lib, "--output", "json")
	var stdoutBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdoutBuf, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("imgpipe build of the demo image: %v", err)
	}
	var res build.Result
	if err := json.Unmarshal(stdoutBuf.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	disks := res.Disks()
	if len(disks) != 1 || disks[0].Generation != "V1" || disks[0].GenerationFrom != "disk" {
		t.Fatalf("demo artifacts = %+v", res.Artifacts)
	}
	l, err := onprem.Open(lib)
	if err != nil {
		t.Fatal(err)
	}
	if md, err := l.Resolve("demo-debian", "test"); err != nil || md.InputSHA256 != disks[0].SHA256 {
		t.Fatalf("library: %+v %v", md, err)
	}
	vhd := filepath.Join(work, "demo.vhd")
	if out, err := exec.Command("imgpipe", "disk", "convert", disks[0].Path, vhd, "--to", "vhd-fixed").CombinedOutput(); err != nil {
		t.Fatalf("convert to fixed VHD: %v\n%s", err, out)
	}
	check := exec.Command(filepath.Join("..", "..", "scripts", "demo-image", "boot-check.sh"), vhd, "600")
	check.Stdout, check.Stderr = os.Stderr, os.Stderr
	if err := check.Run(); err != nil {
		t.Fatalf("the fixed VHD does not boot to a login prompt: %v", err)
	}
}
