package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/azurite"
	"imgpipe/internal/testenv"
)

// TestQuickstartAsWritten runs the README's emulator quickstart through the
// built binary in a temporary directory outside the repository, with
// Azurite found on PATH (as after npm install -g azurite), stderr not a
// terminal and a short progress interval: emulator --start-azurite, source
// the env file, plan and publish examples/emulator.hcl, then upload with the
// env file's account and with a connection string. The one change to the
// README's lines: --listen 127.0.0.1:0 (8443 may be taken on a shared machine).
func TestQuickstartAsWritten(t *testing.T) {
	bin, err := azurite.Binary()
	if err != nil {
		testenv.Missing(t, err.Error())
	}
	root, err := azurite.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	imgpipe := filepath.Join(dir, "bin", "imgpipe")
	if out, err := exec.Command("go", "build", "-o", imgpipe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	work := filepath.Join(dir, "work")
	if err := os.MkdirAll(filepath.Join(work, "examples"), 0o755); err != nil {
		t.Fatal(err)
	}
	hcl, err := os.ReadFile(filepath.Join(root, "examples", "emulator.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "examples", "emulator.hcl"), hcl, 0o644); err != nil {
		t.Fatal(err)
	}
	biosDisk(t, work)

	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AZURE_") || strings.HasPrefix(k, "IMGPIPE_") || k == "PATH" || k == "HOME" || k == "SSL_CERT_FILE" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+dir, "PATH="+filepath.Dir(imgpipe)+":"+filepath.Dir(bin)+":"+os.Getenv("PATH"),
		"IMGPIPE_PROGRESS_INTERVAL=300ms", "IMGPIPE_POLL_INTERVAL=100ms")

	emu := exec.Command(imgpipe, "emulator", "--state", "./emu", "--start-azurite", "--listen", "127.0.0.1:0", "--replication-duration", "2s", "--lro-delay", "200ms")
	emu.Dir, emu.Env = work, env
	emuLog, err := os.Create(filepath.Join(dir, "emulator.log"))
	if err != nil {
		t.Fatal(err)
	}
	emu.Stdout, emu.Stderr = emuLog, emuLog
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = emu.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- emu.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = emu.Process.Kill()
			<-done
		}
	})
	envFile := filepath.Join(work, "emu", "emulator.env")
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(envFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(emuLog.Name())
			t.Fatalf("emulator wrote no env file in 120s:\n%s", log)
		}
	}
	sh := func(script string) (stdout, stderr string, err error) {
		t.Helper()
		c := exec.Command("bash", "-c", "set -e\nsource ./emu/emulator.env\n"+script)
		c.Dir, c.Env = work, env
		var o, e strings.Builder
		c.Stdout, c.Stderr = &o, &e
		err = c.Run()
		return o.String(), e.String(), err
	}

	out, errOut, err := sh("imgpipe plan -f examples/emulator.hcl --source disk.raw")
	if err != nil || !strings.Contains(out+errOut, "+ upload    blob") {
		t.Fatalf("plan: %v\n%s\n%s", err, out, errOut)
	}
	out, errOut, err = sh("IMGPIPE_PROGRESS_INTERVAL=50ms imgpipe publish -f examples/emulator.hcl --source disk.raw --yes")
	if err != nil || !strings.Contains(out, "published /subscriptions/") {
		t.Fatalf("publish: %v\n%s\n%s", err, out, errOut)
	}
	// heartbeats of publish's long steps (each emulator operation takes
	// --lro-delay 200ms, replication 2s): the managed image, the replication
	for _, re := range []string{`(?m)^Still creating managed image demo-1\.0\.0\.\.\. \[[0-9.]+m?s elapsed\]$`,
		`(?m)^Still replicating 1\.0\.0\.\.\. \[[0-9.]+m?s elapsed\] .*northeurope: `} {
		if !regexp.MustCompile(re).MatchString(errOut) {
			t.Fatalf("publish without a terminal printed no heartbeat matching %s:\n%s", re, errOut)
		}
	}

	// upload with the env file's account and key (AZURE_STORAGE_ACCOUNT,
	// IMGPIPE_BLOB_ENDPOINT), then with a connection string while
	// AZURE_STORAGE_KEY is still set (the connection string comes first)
	out, errOut, err = sh(`IMGPIPE_PROGRESS_INTERVAL=1ms imgpipe upload disk.raw --container vhds --name env.vhd -o json`)
	if err != nil || !strings.Contains(out, `"request_checksum": "crc64"`) || strings.Contains(out, "upload:") {
		t.Fatalf("upload with the env file's account: %v\n%s\n%s", err, out, errOut)
	}
	if !regexp.MustCompile(`(?m)^upload: .* \[[0-9.]+m?s elapsed\]$`).MatchString(errOut) {
		t.Fatalf("upload without a terminal printed no heartbeat on stderr:\n%s", errOut)
	}
	out, errOut, err = sh(`AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=http;AccountName=$AZURE_STORAGE_ACCOUNT;AccountKey=$AZURE_STORAGE_KEY;BlobEndpoint=$IMGPIPE_BLOB_ENDPOINT;" ` +
		`AZURE_STORAGE_ACCOUNT= imgpipe upload disk.raw --container vhds --name cs.vhd`)
	if err != nil || !strings.Contains(out, "uploaded disk.raw to") {
		t.Fatalf("upload with a connection string: %v\n%s\n%s", err, out, errOut)
	}
}

func TestEmulatorWarnsOffLoopback(t *testing.T) {
	// (the addresses: azemu's TestListenWarnings) through the command: the
	// warning comes before the listener (this address is not on the
	// machine, so nothing is ever exposed)
	var buf syncBuffer
	root := newRootCmd()
	root.SetArgs([]string{"emulator", "--listen", "192.0.2.1:0"})
	root.SetOut(&buf)
	root.SetErr(&buf)
	err := root.Execute()
	if err == nil || !strings.Contains(buf.String(), "WARNING: the emulator listens on 192.0.2.1:0") {
		t.Fatalf("off-loopback listen: %v\n%s", err, buf.String())
	}
}
