package azemu_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"imgpipe/internal/azemu/azemutest"
)

// rawJSON sends a request with a bearer token and decodes the JSON answer,
// failing unless the status is want.
func rawJSON(t *testing.T, env *azemutest.Env, method, url string, body any, want int) map[string]any {
	t.Helper()
	status, out := rawDo(t, env, method, url, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %v", method, url, status, want, out)
	}
	return out
}

func rawDo(t *testing.T, env *azemutest.Env, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+env.Token(t))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := env.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, url, data)
		}
	}
	return resp.StatusCode, out
}

func errCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}
