package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"imgpipe/internal/drift"
)

func valid() Report {
	return Report{Schema: Schema, Host: "web-1", Platform: "onprem", OS: "linux", Image: "web", Version: "1.2.0", Depth: "full",
		CheckedAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(r *Report)
		ok   bool
	}{
		{"valid", func(r *Report) {}, true},
		{"valid error report", func(r *Report) { r.Image, r.Version, r.Depth, r.Error = "", "", "", "no identity" }, true},
		{"fqdn host", func(r *Report) { r.Host = "web-1.prod.example.com" }, true},
		{"schema", func(r *Report) { r.Schema = "x" }, false},
		{"host space", func(r *Report) { r.Host = "web 1" }, false},
		{"host too long", func(r *Report) { r.Host = strings.Repeat("a", 254) }, false},
		{"host leading dot", func(r *Report) { r.Host = ".web" }, false},
		{"platform", func(r *Report) { r.Platform = "aws" }, false},
		{"region", func(r *Report) { r.Region = "paris-dc1" }, true},
		{"region space", func(r *Report) { r.Region = "paris dc" }, false},
		{"region too long", func(r *Report) { r.Region = strings.Repeat("a", 65) }, false},
		{"image", func(r *Report) { r.Image = "a/b" }, false},
		{"no image", func(r *Report) { r.Image = "" }, false},
		{"version", func(r *Report) { r.Version = "1.0;rm" }, false},
		{"depth", func(r *Report) { r.Depth = "deep" }, false},
		{"zero time", func(r *Report) { r.CheckedAt = time.Time{} }, false},
		{"negative duration", func(r *Report) { r.DurationMS = -1 }, false},
		{"drifted without counts", func(r *Report) { r.Drifted = true }, false},
		{"counts without drifted", func(r *Report) { r.Summary.Services = 1 }, false},
		{"problems alone are not drift", func(r *Report) { r.Summary.Problems = 3 }, true},
		{"huge count", func(r *Report) { r.Summary.Problems = 1 << 31 }, false},
		{"change area", func(r *Report) {
			r.Drifted, r.Summary.FilesAdded = true, 1
			r.Changes = []Change{{Area: "kernel", Kind: "added", Name: "x"}}
		}, false},
		{"change name empty", func(r *Report) {
			r.Drifted, r.Summary.FilesAdded = true, 1
			r.Changes = []Change{{Area: "file", Kind: "added"}}
		}, false},
		{"change detail long", func(r *Report) {
			r.Drifted, r.Summary.FilesAdded = true, 1
			r.Changes = []Change{{Area: "file", Kind: "added", Name: "x", Detail: strings.Repeat("d", maxDetail+1)}}
		}, false},
		{"error too long", func(r *Report) { r.Error = strings.Repeat("e", maxDetail+1) }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := valid()
			tc.mut(&r)
			err := r.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate: %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
		})
	}
}

func TestFromDriftBoundsAndEncodeCap(t *testing.T) {
	d := &drift.Report{Depth: drift.Quick, CheckedAt: time.Now(), Drifted: true, Identity: &drift.Identity{Image: "web", Version: "1.0.0"}}
	for i := 0; i < 500; i++ {
		d.Files = append(d.Files, drift.FileChange{Path: drift.Name("etc/" + strings.Repeat("x", 2000) + "\xff" + string(rune('a'+i%26))), Kind: drift.Added, New: &drift.FileState{Type: drift.TypeRegular}})
	}
	d.Packages = []drift.PackageChange{{Manager: "dpkg", Name: "openssl", Kind: drift.Changed, Old: "1", New: "2"}}
	d.Summary = drift.Summary{FilesAdded: 500, Packages: 1}
	r := FromDrift(d, 0)
	if len(r.Changes) != MaxChanges || r.Truncated != 501-MaxChanges || r.Changes[0].Area != "package" {
		t.Fatalf("changes %d truncated %d first %+v", len(r.Changes), r.Truncated, r.Changes[0])
	}
	r.Schema, r.Host, r.Platform = Schema, "h", "onprem"
	if err := r.Validate(); err != nil {
		t.Fatalf("FromDrift made an invalid report: %v", err)
	}
	b, err := Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxReportBytes {
		t.Fatalf("encoded %d bytes", len(b))
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil || back.Summary.FilesAdded != 500 || back.Truncated+len(back.Changes) != 501 {
		t.Fatalf("round trip: %v %+v", err, back.Summary)
	}
	if err := back.Validate(); err != nil {
		t.Fatalf("capped report invalid: %v", err)
	}
}

func newTestAgent(t *testing.T, url string) *Agent {
	t.Helper()
	a, err := New(Options{Server: url, Credential: "tok", Host: "h1", Platform: "onprem", RetryBase: time.Millisecond, RetryMax: 5 * time.Millisecond, Attempts: 4})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestSendRetries(t *testing.T) {
	tests := []struct {
		name     string
		answers  []int
		wantErr  string
		wantHits int32
	}{
		{"ok at once", []int{202}, "", 1},
		{"503 then ok", []int{503, 502, 202}, "", 3},
		{"429 then ok", []int{429, 202}, "", 2},
		{"gives up", []int{500, 500, 500, 500, 500}, "after 4 attempts", 4},
		{"401 is permanent", []int{401, 202}, "credential", 1},
		{"400 is permanent", []int{400, 202}, "400", 1},
		{"413 is permanent", []int{413}, "max-changes", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int32
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := hits.Add(1)
				if r.URL.Path != ReportsPath || r.Header.Get("Authorization") != "Bearer tok" || r.Header.Get("Content-Type") != "application/json" {
					t.Errorf("request %s %v", r.URL.Path, r.Header)
				}
				body, _ := io.ReadAll(r.Body)
				if !json.Valid(body) {
					t.Errorf("body not JSON")
				}
				w.WriteHeader(tc.answers[min(int(n)-1, len(tc.answers)-1)])
			}))
			defer ts.Close()
			err := newTestAgent(t, ts.URL).Send(context.Background(), valid())
			if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Send: %v, want %q", err, tc.wantErr)
			}
			if hits.Load() != tc.wantHits {
				t.Fatalf("%d requests, want %d", hits.Load(), tc.wantHits)
			}
		})
	}
	// a cancelled context stops the retries
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer ts.Close()
	a, _ := New(Options{Server: ts.URL, Credential: "t", Host: "h", Platform: "onprem", RetryBase: time.Hour, Attempts: 100})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := a.Send(ctx, valid()); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled send: %v", err)
	}
}

func TestCheckWithoutIdentityReportsError(t *testing.T) {
	var got Report
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.WriteHeader(202)
	}))
	defer ts.Close()
	a, err := New(Options{Server: ts.URL, Credential: "t", Host: "h", Platform: "onprem", Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := a.RunOnce(context.Background(), drift.Quick)
	if err == nil || r.Error == "" || got.Error == "" || got.Host != "h" {
		t.Fatalf("err %v report %+v sent %+v", err, r, got)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("error report invalid: %v", err)
	}
}

func TestDetectPlatform(t *testing.T) {
	root := t.TempDir()
	if p := DetectPlatform(root); p != "onprem" {
		t.Fatalf("empty tree: %s", p)
	}
	dmi := filepath.Join(root, "sys", "class", "dmi", "id")
	if err := os.MkdirAll(dmi, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dmi, "chassis_asset_tag"), []byte("0000-0000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p := DetectPlatform(root); p != "onprem" {
		t.Fatalf("hyper-v tag: %s", p)
	}
	if err := os.WriteFile(filepath.Join(dmi, "chassis_asset_tag"), []byte(AzureAssetTag+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if p := DetectPlatform(root); p != "azure" {
		t.Fatalf("azure tag: %s", p)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, o := range []Options{
		{Server: "fleet:8443", Token: "t", Host: "h"},
		{Server: "ftp://fleet", Token: "t", Host: "h"},
		{Server: "https://fleet", Host: "h"},
		{Server: "https://fleet", Token: "t", Host: "bad host"},
		{Server: "https://fleet", Token: "t", Host: "h", Platform: "gcp"},
		// a token never crosses a network in clear text
		{Server: "http://fleet.example:8080", Token: "t", Host: "h"},
		{Server: "http://10.0.0.5:8080", Credential: "c", Host: "h"},
		{Server: "http://[2001:db8::1]:8080", Token: "t", Host: "h"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

// FuzzDecodeReport: the server's decoding path (strict JSON, then Validate)
// never panics, and whatever it accepts survives a re-encoding.
func FuzzDecodeReport(f *testing.F) {
	b, _ := json.Marshal(valid())
	f.Add(b)
	r := valid()
	r.Drifted, r.Summary.FilesChanged = true, 1
	r.Changes = []Change{{Area: "file", Kind: "changed", Name: "etc/x", Detail: "content"}}
	b, _ = json.Marshal(r)
	f.Add(b)
	f.Add([]byte(`{"schema":"imgpipe-agent-report/v1","host":"\u0000"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > MaxReportBytes {
			return
		}
		var r Report
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if dec.Decode(&r) != nil || r.Validate() != nil {
			return
		}
		out, err := Encode(r)
		if err != nil {
			t.Fatalf("accepted report does not encode: %v", err)
		}
		var back Report
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if err := back.Validate(); err != nil {
			t.Fatalf("accepted report invalid after a round trip: %v", err)
		}
	})
}

func TestLoopFullThenQuick(t *testing.T) {
	root := imageTree(t)
	depths := make(chan string, 10)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rep Report
		_ = json.NewDecoder(r.Body).Decode(&rep)
		depths <- rep.Depth
		w.WriteHeader(202)
	}))
	defer ts.Close()
	a, err := New(Options{Server: ts.URL, Credential: "t", Host: "h", Platform: "onprem", Root: root})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	runs := 0
	go func() {
		done <- a.Loop(ctx, 10*time.Millisecond, time.Hour, func(r Report, err error) {
			if err != nil {
				t.Errorf("run: %v", err)
			}
			if runs++; runs == 3 {
				cancel()
			}
		})
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(depths) > 0 {
		got = append(got, <-depths)
	}
	if strings.Join(got, ",") != "full,quick,quick" {
		t.Fatalf("depths %v, want full then quick", got)
	}
}
