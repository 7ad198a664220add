package catalog

import (
	"strings"
	"testing"
)

func TestParseRefAndWhoAmI(t *testing.T) {
	for _, args := range [][]string{{"web", "1.4.0"}, {"web@1.4.0"}} {
		if r, err := ParseRef(args); err != nil || r != (Ref{Image: "web", Version: "1.4.0"}) {
			t.Errorf("ParseRef(%q) = %v, %v", args, r, err)
		}
	}
	for _, args := range [][]string{{"web"}, {}, {"a", "b", "c"}, {"web", "not-a-version"}, {"Bad Name", "1.0.0"}} {
		if _, err := ParseRef(args); err == nil {
			t.Errorf("ParseRef(%q) accepted", args)
		}
	}
	if err := RefArgs([]string{"a", "b", "c"}); err == nil || !strings.Contains(err.Error(), "IMAGE@VERSION") {
		t.Errorf("RefArgs: %v", err)
	}
	t.Setenv("USER", "ops")
	if WhoAmI(" ci ") != "ci" || WhoAmI("") != "ops" {
		t.Errorf("WhoAmI: %q %q", WhoAmI(" ci "), WhoAmI(""))
	}
}
