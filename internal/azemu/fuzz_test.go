package azemu

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// FuzzARMRequest throws arbitrary methods, paths, queries and bodies at the
// ARM router with a valid token: it must answer (never panic) and every
// error must be the ARM error body.
func FuzzARMRequest(f *testing.F) {
	s, err := New(Options{LRODelay: time.Millisecond, PageSize: 2})
	if err != nil {
		f.Fatal(err)
	}
	s.url = "https://127.0.0.1:1"
	tok := s.mintToken(Client{ClientID: s.opts.ClientID, ObjectID: s.opts.ObjectID}, time.Now().Add(time.Hour))
	sub := "/subscriptions/11111111-2222-4333-8444-555555555555"
	rg := sub + "/resourceGroups/rg"
	seed := func(method, path, body string) { f.Add(method, path, body) }
	seed("PUT", rg+"?api-version=2021-04-01", `{"location":"westus"}`)
	seed("PUT", rg+"/providers/Microsoft.Compute/galleries/g?api-version=2026-03-03", `{"location":"westus"}`)
	seed("PUT", rg+"/providers/Microsoft.Compute/galleries/g/images/d?api-version=2026-03-03", `{"location":"westus","properties":{"osType":"Linux","osState":"Generalized","identifier":{"publisher":"p","offer":"o","sku":"s"}}}`)
	seed("PUT", rg+"/providers/Microsoft.Compute/galleries/g/images/d/versions/1.0.0?api-version=2026-03-03", `{"location":"westus","properties":{"storageProfile":{"source":{"id":"`+rg+`/providers/Microsoft.Compute/images/i"}}}}`)
	seed("PATCH", rg+"/providers/Microsoft.Compute/galleries/g/images/d/versions/1.0.0?api-version=2026-03-03", `{"properties":{"storageProfile":{}}}`)
	seed("PUT", rg+"/providers/Microsoft.Compute/disks/d?api-version=2026-03-02", `{"location":"westus","properties":{"creationData":{"createOption":"Upload","uploadSizeBytes":20972032}}}`)
	seed("POST", rg+"/providers/Microsoft.Compute/disks/d/beginGetAccess?api-version=2026-03-02", `{"access":"Write","durationInSeconds":60}`)
	seed("PUT", rg+"/providers/Microsoft.Compute/virtualMachines/vm?api-version=2026-04-01", `{"location":"westus","properties":{"storageProfile":{"imageReference":{"id":"`+rg+`/providers/Microsoft.Compute/galleries/g/images/d"}}}}`)
	seed("PUT", rg+"/providers/Microsoft.Compute/galleries/g/providers/Microsoft.Authorization/roleAssignments/3f2c6a1e-7b8d-4c9e-a0f1-2b3c4d5e6f70?api-version=2022-04-01", `{"properties":{"principalId":"x","roleDefinitionId":"y"}}`)
	seed("GET", rg+"/providers/Microsoft.Compute/galleries?api-version=2026-03-03&$skiptoken=1", "")
	seed("DELETE", rg+"/providers/Microsoft.Compute/galleries/g?api-version=2026-03-03", "")
	seed("GET", sub+"/providers/Microsoft.Compute/locations/westus/operations/x?api-version=2026-03-03&monitor=true", "")
	seed("GET", "/subscriptions//resourceGroups/%2F/providers", "[1,2,")
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if len(body) > 1<<16 || len(path) > 4096 {
			return
		}
		switch method {
		case "GET", "PUT", "PATCH", "POST", "DELETE", "HEAD":
		default:
			method = "GET"
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "https://127.0.0.1:1"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 400 && rec.Code != http.StatusMethodNotAllowed && method != "HEAD" {
			if !strings.Contains(rec.Body.String(), `"error"`) {
				t.Fatalf("%s %s: %d without an error body: %q", method, path, rec.Code, rec.Body.String())
			}
		}
	})
}

// FuzzToken checks the bearer-token parser accepts only what it minted.
func FuzzToken(f *testing.F) {
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	good := s.mintToken(Client{ClientID: "c"}, time.Now().Add(time.Hour))
	f.Add(good)
	f.Add("azemu.e30.00")
	f.Add("")
	f.Add(good + "x")
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := s.parseToken(tok); err == nil && tok != good {
			t.Fatalf("forged token %q accepted", tok)
		}
	})
}

func FuzzVersionName(f *testing.F) {
	for _, s := range []string{"1.0.0", "2147483647.0.0", "2147483648.0.0", "1.0", "a.b.c", "01.02.03", "1.0.0.0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, n string) {
		ok := validVersionName(n)
		if ok && strings.Count(n, ".") != 2 {
			t.Fatalf("%q accepted", n)
		}
	})
}
