package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	azruntime "github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/catalog/catalogtest"
	"imgpipe/internal/drift"
	"imgpipe/internal/events"
	"imgpipe/internal/testenv"
)

// loopReceiver is the webhook of the end-to-end test: it checks each
// delivery's signature, answers 503 while down, and keeps every event it
// accepted by id (deliveries are at least once; receivers dedupe on the id).
type loopReceiver struct {
	mu     sync.Mutex
	secret []byte
	down   bool
	got    map[string]loopEvent // by id
	dups   int                  // deliveries of an id already received
	bad    int
}

type loopEvent struct {
	Type, Subject string
	Data          json.RawMessage
}

func (rc *loopReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !events.Verify(rc.secret, body, r.Header.Get(events.SignatureHeader)) {
		rc.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.down {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	var ev struct {
		SpecVersion   string `json:"specversion"`
		ID            string `json:"id"`
		Type, Subject string
		Data          json.RawMessage
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.SpecVersion != "1.0" || ev.ID == "" {
		rc.bad++
		http.Error(w, "not a CloudEvent", http.StatusBadRequest)
		return
	}
	if _, seen := rc.got[ev.ID]; seen {
		rc.dups++
	}
	rc.got[ev.ID] = loopEvent{Type: ev.Type, Subject: ev.Subject, Data: ev.Data}
}

func (rc *loopReceiver) setDown(down bool) {
	rc.mu.Lock()
	rc.down = down
	rc.mu.Unlock()
}

func (rc *loopReceiver) snapshot() map[string]loopEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := make(map[string]loopEvent, len(rc.got))
	for k, v := range rc.got {
		out[k] = v
	}
	return out
}

// serveProc is `imgpipe serve` as its own process (this test binary run as
// imgpipe), so the test can kill it and start it again.
type serveProc struct {
	cmd  *exec.Cmd
	log  string
	addr string
	done chan error
}

func startServe(t *testing.T, dir, name string, args ...string) *serveProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &serveProc{log: filepath.Join(dir, name+".log"), addr: addr, done: make(chan error, 1)}
	logf, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), "IMGPIPE_TEST_MAIN="+strings.Join(append([]string{"serve", "--listen", addr}, args...), " "))
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() { p.kill() })
	for deadline := time.Now().Add(60 * time.Second); ; {
		if resp, err := http.Get("http://" + addr + "/api/images"); err == nil {
			resp.Body.Close()
			return p
		}
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("serve %s exited: %v\n%s", name, err, p.tail())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve %s did not listen within 60 s\n%s", name, p.tail())
		}
	}
}

// kill ends the server the hard way (kill -9): nothing is flushed or
// handed over; what it had claimed stays claimed until its leases run out.
func (p *serveProc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		p.done <- nil
	}
}

func (p *serveProc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// loopHost is an on-prem machine with the image's agent: a tree whose
// identity and baseline say image@version, reporting to the fleet server.
type loopHost struct {
	name, root string
}

func newLoopHost(t *testing.T, dir, name, version string) *loopHost {
	t.Helper()
	h := &loopHost{name: name, root: filepath.Join(dir, name)}
	h.install(t, version)
	return h
}

// install (re)deploys the host from version: a fresh tree and baseline, as
// the replacement script's new VM would boot.
func (h *loopHost) install(t *testing.T, version string) {
	t.Helper()
	ctx := context.Background()
	cred, _ := os.ReadFile(filepath.Join(h.root, "etc", "imgpipe", "agent.credential"))
	os.RemoveAll(h.root)
	mustWrite(t, filepath.Join(h.root, "srv", "app.conf"), []byte("workers = 4\n"))
	if len(cred) > 0 { // the same machine name keeps its enrolment
		mustWrite(t, filepath.Join(h.root, "etc", "imgpipe", "agent.credential"), cred)
		os.Chmod(filepath.Join(h.root, "etc", "imgpipe", "agent.credential"), 0o600)
	}
	id := drift.Identity{Image: "web", Version: version}
	if _, err := drift.WriteIdentity(h.root, id); err != nil {
		t.Fatal(err)
	}
	base, err := drift.Capture(ctx, h.root, drift.CaptureOptions{Rules: drift.Rules{Paths: []string{"srv"}}, Identity: &id})
	if err != nil {
		t.Fatal(err)
	}
	bp, _ := drift.BaselinePath(h.root)
	if _, err := drift.WriteBaselineFile(bp, base); err != nil {
		t.Fatal(err)
	}
}

func (h *loopHost) report(t *testing.T, server, tokenFile string, wantExit int) {
	t.Helper()
	out, err := runCLI(t, "agent", "--once", "--server", "http://"+server, "--token-file", tokenFile, "--root", h.root,
		"--name", h.name, "--platform", "onprem", "--quick")
	if exitStatus(err) != wantExit {
		t.Fatalf("agent on %s: exit %d, want %d (%v)\n%s", h.name, exitStatus(err), wantExit, err, out)
	}
}

// waitServe polls cond every 200 ms until it holds or timeout passes.
// targetStates says where each of a rollout's targets stands, for
// failure messages.
func targetStates(r catalog.Rollout) string {
	var b strings.Builder
	for _, tg := range r.Targets {
		fmt.Fprintf(&b, "\n  %s %s: %s (%s)", tg.Kind, tg.Target, tg.State, tg.Detail)
	}
	return b.String()
}

func waitServe(t *testing.T, timeout time.Duration, what string, srv *serveProc, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s\nserve log:\n%s", what, timeout, srv.tail())
		}
		select {
		case err := <-srv.done:
			srv.done <- err
			t.Fatalf("%s: serve exited: %v\n%s", what, err, srv.tail())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestLoopEndToEnd closes the loop on local components: web@1.0.0 is in
// prod, published to an azemu gallery (Azurite blobs) and to the on-prem
// library, running on two on-prem agents; the agents report drift through
// imgpipe serve; a dry run shows the decision and changes nothing; serve is
// killed and started again with the reconciler, which rebuilds with Packer
// (the repackage template), publishes staged, boots the version in qemu
// (the test gate, TCG), and promotes it; a second trigger during the run
// starts nothing; the rollout rolls the four-instance scale set in two
// batches to exactVersion 1.0.1 (internal/rollout) and gives each on-prem
// host a replacement script, and completes when their agents report 1.0.1;
// every event queued in the catalog reached the webhook, exactly once after
// dedupe, including those queued before the restart.
func TestLoopEndToEnd(t *testing.T) {
	if testing.Short() && !testenv.InCI() {
		t.Skip("builds and boots an image (-short)")
	}
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the tiny test image is linux/amd64")
	}
	for _, tool := range []string{"packer", "qemu-system-x86_64", "qemu-img", "busybox", "cpio", "sfdisk", "mkfs.vfat", "mcopy", "syslinux"} {
		testenv.RequireTool(t, tool)
	}
	if m, _ := filepath.Glob("/boot/vmlinuz-*"); len(m) == 0 {
		testenv.Missing(t, "no kernel in /boot (apt-get install linux-image-amd64)")
	}
	start := time.Now()
	ctx := context.Background()
	env := azemutest.StartWithAzurite(t, azemu.Options{LRODelay: 100 * time.Millisecond, RetryAfter: 50 * time.Millisecond, ReplicationDuration: 300 * time.Millisecond})
	dir := cliEmulatorEnv(t, env)
	loc := filepath.Join(dir, "catalog.db")

	// the first build: the tiny bootable image with a static agent (as testrun's boot test)
	repo, _ := filepath.Abs("../..")
	guest := filepath.Join(dir, "guest", "imgpipe")
	gb := exec.Command("go", "build", "-ldflags", "-s -w", "-o", guest, "./cmd/imgpipe")
	gb.Dir, gb.Env = repo, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := gb.CombinedOutput(); err != nil {
		t.Fatalf("build the guest's imgpipe: %v\n%s", err, out)
	}
	first := filepath.Join(dir, "build", "web-1.0.0.raw")
	os.MkdirAll(filepath.Dir(first), 0o755)
	if out, err := exec.Command(filepath.Join(repo, "scripts/test-image/build-tiny.sh"), first, guest, "web", "1.0.0").CombinedOutput(); err != nil {
		t.Fatalf("build-tiny.sh: %v\n%s", err, out)
	}
	next := filepath.Join(dir, "build", "web-next.raw")
	file := filepath.Join(dir, "pipeline.hcl")
	mustWrite(t, file, fmt.Appendf(nil, `
image "web" {
  os_type = "Linux"
  packer {
    template = %q
    vars = {
      previous = %q
      output   = %q
      release  = "rebuilt from source by the reconciler"
    }
    artifact = %q
  }
}
azure "emu" {
  subscription   = %q
  resource_group = "rg-loop"
  location       = "westeurope"
  storage {
    account        = %q
    resource_group = "azemu-storage"
    container      = "vhds"
    blob_endpoint  = %q
  }
  gallery    = "loop_gallery"
  definition = "web"
  version    = "next-patch"
  replication_timeout = "2m"
}
onprem "lab" {
  library = %q
  channel = "test"
}
test "smoke" {
  boot_timeout = "8m"
  boot_marker  = "imgpipe-test-image: booted"
  command "busybox" {
    run     = "busybox | head -n 1"
    timeout = "60s"
  }
}
rebuild {
  on_drift {
    hosts = 2
  }
  cooldown = "1h"
}
catalog {
  url = %q
}
`, repackageTemplate(t), first, next, next, env.SubscriptionID, env.Azurite.AccountName, env.Azurite.BlobEndpoint, filepath.Join(dir, "library"), loc))

	// the webhook, from the start: it must see every event, once
	rc := &loopReceiver{secret: []byte("loop-webhook-secret"), got: map[string]loopEvent{}, down: true}
	hook := httptest.NewServer(rc)
	defer hook.Close()
	secret := filepath.Join(dir, "hook.secret")
	mustWrite(t, secret, rc.secret)
	os.Chmod(secret, 0o600)
	if out, err := runCLI(t, "webhook", "add", "rx", hook.URL, "--secret-file", secret, "--catalog", loc); err != nil {
		t.Fatalf("webhook add: %v\n%s", err, out)
	}

	// web@1.0.0: published (library + gallery) and in prod
	if out, err := runCLI(t, "publish", "-f", file, "--yes", "--source", first); err != nil {
		t.Fatalf("publish 1.0.0: %v\n%s", err, out)
	}
	catalogtest.TestedAt(t, loc, catalog.Ref{Image: "web", Version: "1.0.0"}) // prod requires a passing test
	if out, err := runCLI(t, "promote", "web", "1.0.0", "--to", "prod", "--catalog", loc); err != nil {
		t.Fatalf("promote 1.0.0: %v\n%s", err, out)
	}
	// a scale set of four instances runs it (rolling upgrades, half at a time)
	versionID := fmt.Sprintf("/subscriptions/%s/resourceGroups/rg-loop/providers/Microsoft.Compute/galleries/loop_gallery/images/web/versions/1.0.0", env.SubscriptionID)
	cf, err := armcompute.NewClientFactory(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	sp, err := cf.NewVirtualMachineScaleSetsClient().BeginCreateOrUpdate(ctx, "rg-loop", "web-vmss", armcompute.VirtualMachineScaleSet{
		Location: to.Ptr("westeurope"), SKU: &armcompute.SKU{Name: to.Ptr("Standard_B1s"), Capacity: to.Ptr[int64](4)},
		Properties: &armcompute.VirtualMachineScaleSetProperties{
			UpgradePolicy: &armcompute.UpgradePolicy{Mode: to.Ptr(armcompute.UpgradeModeRolling), RollingUpgradePolicy: &armcompute.RollingUpgradePolicy{
				MaxBatchInstancePercent: to.Ptr[int32](50), MaxUnhealthyInstancePercent: to.Ptr[int32](50)}},
			VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{
				ImageReference: &armcompute.ImageReference{ID: to.Ptr(versionID)}}},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := sp.PollUntilDone(ctx, &azruntime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// the rollout policy: that scale set and the on-prem hosts of prod
	pf, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(pf, `
rollout {
  max_batch_percent     = 50
  max_unhealthy_percent = 50
  scale_sets = [%q]
  hosts {
    channel = "prod"
    onprem  = "lab"
    switch  = "LAN"
  }
}
`, *ss.ID)
	pf.Close()

	// the fleet server, the agents, their drift
	token := filepath.Join(dir, "agent.token")
	mustWrite(t, token, []byte("loop-e2e-fleet-token-0123456789\n"))
	os.Chmod(token, 0o600)
	srv := startServe(t, dir, "serve-1", "--catalog", loc, "--agent-token-file", token)
	hosts := []*loopHost{newLoopHost(t, dir, "hv-web-01", "1.0.0"), newLoopHost(t, dir, "hv-web-02", "1.0.0")}
	for _, h := range hosts {
		h.report(t, srv.addr, token, 0)
		mustWrite(t, filepath.Join(h.root, "srv", "app.conf"), []byte("workers = 64 # changed by hand\n"))
		h.report(t, srv.addr, token, 2)
	}

	// the decision, dry: listed with its reason, nothing changes
	before := catalogCounts(t, loc)
	out, err := runCLI(t, "reconcile", "-f", file, "--dry-run", "-o", "json")
	var dry struct {
		DryRun    bool `json:"dry_run"`
		Decisions []struct{ Image, Decision, Trigger, Reason string }
	}
	if err != nil || json.Unmarshal([]byte(out), &dry) != nil || !dry.DryRun || len(dry.Decisions) != 1 ||
		dry.Decisions[0].Decision != "rebuild" || dry.Decisions[0].Reason != "2 of 2 prod hosts drifted: rebuild" {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for k, n := range catalogCounts(t, loc) {
		if before[k] != n {
			t.Errorf("the dry run changed %s: %d rows, %d before", k, n, before[k])
		}
	}

	// a restart in the middle: the server is killed with undelivered events
	// in the outbox (the webhook was down), and the next one has the reconciler
	queued := countRows(t, loc, "SELECT COUNT(*) FROM event_deliveries WHERE delivered_at = ''")
	if queued == 0 {
		t.Fatal("no undelivered event before the restart")
	}
	srv.kill()
	rc.setDown(false)
	srv = startServe(t, dir, "serve-2", "--catalog", loc, "--agent-token-file", token,
		"--reconcile", file, "--reconcile-interval", "2s", "--reconcile-accel", "tcg")
	cat, err := catalog.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	rebuilds := func() []catalog.Decision {
		ds, _ := cat.Decisions(ctx, catalog.DecisionFilter{Image: "web", Decision: catalog.DecisionRebuild})
		return ds
	}
	waitServe(t, 2*time.Minute, "the reconciler in serve claims a rebuild", srv, func() bool { return len(rebuilds()) > 0 })

	// a second trigger during the run: imgpipe reconcile from cron waits
	if rb := rebuilds(); rb[0].State == catalog.RebuildRunning {
		out, err := runCLI(t, "reconcile", "-f", file, "-o", "json")
		if err != nil || !strings.Contains(out, `"decision": "wait"`) || !strings.Contains(out, "a rebuild is running (decision ") {
			t.Fatalf("a second trigger during the run: %v\n%s", err, out)
		}
	} else {
		t.Logf("the rebuild ended before the second trigger could be tried (%s)", rb[0].State)
	}
	waitServe(t, 12*time.Minute, "the rebuild ends", srv, func() bool { rb := rebuilds(); return rb[0].State != catalog.RebuildRunning })
	rb := rebuilds()
	if len(rb) != 1 || rb[0].State != catalog.RebuildSucceeded || rb[0].Version != "1.0.1" {
		stopped, _ := cat.Decisions(ctx, catalog.DecisionFilter{Image: "web", Decision: catalog.DecisionStopped})
		t.Fatalf("rebuilds %+v, stopped %+v\nserve log:\n%s", rb, stopped, srv.tail())
	}
	t.Logf("rebuilt, tested and promoted after %s", time.Since(start).Round(time.Second))

	// every step is in the catalog
	ref := catalog.Ref{Image: "web", Version: "1.0.1"}
	chs, _ := cat.Channels(ctx, "web")
	for _, ch := range chs {
		if ch.Version != "1.0.1" {
			t.Errorf("channel %s at %s, want 1.0.1", ch.Name, ch.Version)
		}
	}
	runs, _ := cat.Runs(ctx, catalog.RunFilter{Image: "web", Limit: 20})
	var kinds []string
	for _, r := range runs {
		if r.Version == "1.0.1" || (r.Kind == catalog.RunBuild && r.By == "imgpipe reconcile") {
			kinds = append(kinds, r.Kind+":"+r.Status)
		}
	}
	sort.Strings(kinds)
	if want := []string{"build:succeeded", "publish:succeeded", "test:succeeded"}; !slices.Equal(kinds, want) {
		t.Errorf("the rebuild's runs %v, want %v", kinds, want)
	}
	if trs, _ := cat.TestRuns(ctx, ref); len(trs) != 1 || !trs[0].Passed {
		t.Errorf("test runs of 1.0.1: %+v", trs)
	}
	cps, _ := cat.Copies(ctx, ref)
	var copyKinds []string
	for _, c := range cps {
		copyKinds = append(copyKinds, string(c.Kind))
	}
	if s := strings.Join(copyKinds, " "); !strings.Contains(s, "gallery_version") || !strings.Contains(s, "onprem") {
		t.Errorf("copies of 1.0.1: %s", s)
	}

	// the rollout: the scale set rolled in batches to 1.0.1; the on-prem
	// hosts got replacement scripts and wait for their agents
	var rs []catalog.Rollout
	waitServe(t, 3*time.Minute, "the scale set rolls", srv, func() bool {
		rs, _ = cat.Rollouts(ctx, "web", 0)
		if len(rs) != 1 {
			return false
		}
		r, err := cat.RolloutByID(ctx, rs[0].ID)
		if err != nil {
			return false
		}
		for _, tg := range r.Targets {
			if tg.Kind == catalog.RolloutScaleSet && tg.State == catalog.RolloutRunning {
				return false
			}
		}
		return true
	})
	if len(rs) != 1 || rs[0].Ref.Version != "1.0.1" || rs[0].State != catalog.RolloutRunning {
		t.Fatalf("rollouts %+v\nserve log:\n%s", rs, srv.tail())
	}
	ro, err := cat.RolloutByID(ctx, rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var onprem []string
	for _, m := range ro.Members {
		switch {
		case strings.Contains(m.Target, "virtualMachineScaleSets"):
			if m.Version != "1.0.1" || m.State != "upgraded" {
				t.Errorf("scale set instance %+v (targets: %s)", m, targetStates(ro))
			}
		default:
			onprem = append(onprem, m.Member)
			if m.State != "replace" || !strings.Contains(m.Plan, m.Member) || !strings.Contains(m.Plan, "1.0.1") {
				t.Errorf("on-prem member %s: %s, plan:\n%s", m.Member, m.State, m.Plan)
			}
		}
	}
	if len(ro.Members) != 6 || len(onprem) != 2 {
		t.Fatalf("rollout %+v\nserve log:\n%s", ro, srv.tail())
	}
	vms, err := cf.NewVirtualMachineScaleSetVMsClient().NewListPager("rg-loop", "web-vmss", nil).NextPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, vm := range vms.Value {
		if ir := vm.Properties.StorageProfile.ImageReference; ir == nil || ir.ExactVersion == nil || *ir.ExactVersion != "1.0.1" {
			t.Errorf("instance %s runs %+v", *vm.InstanceID, ir)
		}
	}
	// the reconciler's promotion to prod took 1.0.1 out of staging, as
	// imgpipe promote does: it is in the definition's latest
	gv, err := cf.NewGalleryImageVersionsClient().Get(ctx, "rg-loop", "loop_gallery", "web", "1.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if pp := gv.Properties.PublishingProfile; pp.ExcludeFromLatest == nil || *pp.ExcludeFromLatest {
		t.Errorf("1.0.1 promoted to prod by the reconciler is still excluded from latest: %v", pp.ExcludeFromLatest)
	}
	// the hosts are replaced (the script's new VM boots 1.0.1) and report it:
	// the rollout completes
	for _, h := range hosts {
		h.install(t, "1.0.1")
		h.report(t, srv.addr, token, 0)
	}
	waitServe(t, time.Minute, "the rollout completes when the agents report 1.0.1", srv, func() bool {
		r, err := cat.RolloutByID(ctx, ro.ID)
		return err == nil && r.State == catalog.RolloutCompleted
	})

	// the webhook got every event in the outbox, exactly once after dedupe
	outbox := map[string]string{}
	rows, err := cat.DB().QueryContext(ctx, "SELECT event_id, type FROM event_outbox")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, typ string
		rows.Scan(&id, &typ)
		outbox[id] = typ
	}
	rows.Close()
	waitServe(t, 90*time.Second, "the webhook receives every queued event", srv, func() bool { return len(rc.snapshot()) >= len(outbox) })
	got := rc.snapshot()
	types := map[string]int{}
	for id, typ := range outbox {
		ev, ok := got[id]
		if !ok || ev.Type != typ {
			t.Errorf("event %s (%s) not received: %+v", id, typ, ev)
		}
		types[typ]++
	}
	if len(got) != len(outbox) {
		t.Errorf("received %d distinct events, the outbox has %d", len(got), len(outbox))
	}
	for _, typ := range []string{events.TypeBuild, events.TypePublish, events.TypeTest, events.TypePromotion, events.TypeReconcile, events.TypeRollout} {
		if types[typ] == 0 {
			t.Errorf("no %s event: %v", typ, types)
		}
	}
	prodPromotions := 0
	for _, ev := range got {
		var p catalog.Promotion
		if ev.Type == events.TypePromotion && json.Unmarshal(ev.Data, &p) == nil && p.Channel == "prod" && p.To == "1.0.1" {
			prodPromotions++
		}
	}
	batches := map[int]bool{}
	for _, ev := range got {
		var st struct {
			Kind  string `json:"kind"`
			Batch int    `json:"batch"`
		}
		if ev.Type == events.TypeRollout && json.Unmarshal(ev.Data, &st) == nil && st.Kind == catalog.RolloutScaleSet {
			batches[st.Batch] = true
		}
	}
	if !batches[1] || !batches[2] {
		t.Errorf("the scale set's rollout steps name batches %v, want 1 and 2 (4 instances, 50%% a batch)", batches)
	}
	if prodPromotions != 1 {
		t.Errorf("%d distinct events for the promotion of 1.0.1 to prod", prodPromotions)
	}
	if rc.bad > 0 {
		t.Errorf("%d deliveries with a bad signature or body", rc.bad)
	}
	t.Logf("%d events (%v), %d redelivered, in %s", len(got), types, rc.dups, time.Since(start).Round(time.Second))
}

func countRows(t *testing.T, loc, query string) int {
	t.Helper()
	cat, err := catalog.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	var n int
	if err := cat.DB().QueryRow(query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
