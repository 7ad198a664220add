package view

import (
	"bytes"
	"strings"
	"testing"
)

func TestApproveAsksOnlyATerminal(t *testing.T) {
	var out bytes.Buffer
	if ok, err := Approve(strings.NewReader("n\n"), &out, true, "Apply?"); !ok || err != nil || out.Len() != 0 {
		t.Errorf("given: %v %v %q", ok, err, out.String())
	}
	if ok, err := Approve(strings.NewReader("y\n"), &out, false, "Apply?"); ok || err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("not a terminal: %v %v", ok, err)
	}
}
