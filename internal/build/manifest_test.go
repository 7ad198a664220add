package build

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const twoRuns = `{
  "builds": [
    {"name": "disk", "builder_type": "null", "build_time": 1, "files": [{"name": "old.raw", "size": 1}],
     "artifact_id": "", "packer_run_uuid": "run-1", "custom_data": {"generation": "V1"}},
    {"name": "debian", "builder_type": "qemu", "build_time": 2,
     "files": [{"name": "output/debian.qcow2", "size": 1048576}],
     "artifact_id": "VM", "packer_run_uuid": "run-2", "custom_data": {"generation": "V2", "os": "linux"}},
    {"name": "hv", "builder_type": "hyperv-vmcx", "build_time": 2,
     "files": [{"name": "output\\Virtual Hard Disks\\hv.vhdx", "size": 5}, {"name": "output\\Virtual Machines\\x.vmcx", "size": 3}],
     "artifact_id": "", "packer_run_uuid": "run-2", "custom_data": null}
  ],
  "last_run_uuid": "run-2"
}`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(twoRuns))
	if err != nil {
		t.Fatal(err)
	}
	last := m.LastRun()
	if len(last) != 2 || last[0].Name != "debian" || last[1].Name != "hv" {
		t.Fatalf("LastRun = %+v", last)
	}
	if !reflect.DeepEqual(last[0].CustomData, map[string]string{"generation": "V2", "os": "linux"}) || last[0].Files[0].Size != 1<<20 {
		t.Errorf("debian build = %+v", last[0])
	}
	if len(last[1].Files) != 2 || last[1].Files[0].Name != `output\Virtual Hard Disks\hv.vhdx` {
		t.Errorf("hv build = %+v", last[1])
	}
	// No run id: every build counts.
	m2, _ := ParseManifest([]byte(`{"builds":[{"name":"a"},{"name":"b"}]}`))
	if len(m2.LastRun()) != 2 {
		t.Errorf("LastRun without run id = %+v", m2.LastRun())
	}
	for _, bad := range []string{"", "{", `{"builds": 3}`, `[]`} {
		if _, err := ParseManifest([]byte(bad)); err == nil && bad != "[]" {
			t.Errorf("ParseManifest(%q) accepted", bad)
		}
	}
	if _, err := ParseManifest([]byte(strings.Repeat(" ", maxManifest+1))); err == nil {
		t.Error("oversized manifest accepted")
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(twoRuns))
	f.Add([]byte(`{"builds":[],"last_run_uuid":""}`))
	f.Add([]byte(`{"builds":[{"files":[{"name":"a","size":-1}],"custom_data":{"a":"b"}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		last := m.LastRun()
		if len(last) > len(m.Builds) {
			t.Fatal("LastRun returned more builds than exist")
		}
		// A parsed manifest re-encodes and parses to the same value.
		enc, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := ParseManifest(enc)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-encoded manifest differs: %v", err)
		}
	})
}
