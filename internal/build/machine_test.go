package build

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Line
		err  bool
	}{
		{in: "1795696462,,ui,say,==> null.disk: Running post-processor:  (type artifice)",
			want: Line{Time: time.Unix(1795696462, 0).UTC(), Type: "ui", Data: []string{"say", "==> null.disk: Running post-processor:  (type artifice)"}}},
		{in: `1795696477,,ui,error,==> null.disk: partition table%!(PACKER_COMMA) damaged`,
			want: Line{Time: time.Unix(1795696477, 0).UTC(), Type: "ui", Data: []string{"error", "==> null.disk: partition table, damaged"}}},
		{in: `1795696481,,ui,error,Error: Unsupported argument\n\n  on bad.pkr.hcl line 2:\n`,
			want: Line{Time: time.Unix(1795696481, 0).UTC(), Type: "ui", Data: []string{"error", "Error: Unsupported argument\n\n  on bad.pkr.hcl line 2:\n"}}},
		{in: "1795696462,null.disk,artifact,1,file,0,out/disk.raw",
			want: Line{Time: time.Unix(1795696462, 0).UTC(), Target: "null.disk", Type: "artifact", Data: []string{"1", "file", "0", "out/disk.raw"}}},
		{in: "1795696462,null.disk,artifact,1,id,",
			want: Line{Time: time.Unix(1795696462, 0).UTC(), Target: "null.disk", Type: "artifact", Data: []string{"1", "id", ""}}},
		{in: "1795696745,,version,1.6.6\r",
			want: Line{Time: time.Unix(1795696745, 0).UTC(), Type: "version", Data: []string{"1.6.6"}}},
		{in: "1795696477,,error-count",
			want: Line{Time: time.Unix(1795696477, 0).UTC(), Type: "error-count"}},
		{in: "==> plain text from a plugin", err: true},
		{in: "abc,,ui,say,x", err: true},
		{in: "-1,,ui,say,x", err: true},
		{in: "12,,", err: true},
		{in: "", err: true},
	} {
		got, err := ParseLine(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParseLine(%q) error = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if !tc.err && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseLine(%q) =\n %+v, want\n %+v", tc.in, got, tc.want)
		}
	}
}

func TestUIJoinsSplitText(t *testing.T) {
	// A ui message whose commas were not escaped (older plugins) stays whole.
	l, err := ParseLine("1,,ui,message,a,b,c")
	if err != nil {
		t.Fatal(err)
	}
	if level, text, ok := l.UI(); !ok || level != "message" || text != "a,b,c" {
		t.Errorf("UI() = %q %q %v", level, text, ok)
	}
}

// A captured run (null builder + artifice + manifest + shell-local) as
// Packer 1.6.6 prints its artifact listing.
const capturedRun = `1795696462,,ui,say,==> null.disk: Running local shell script: /tmp/packer-shell4259275884
1795696462,,ui,message,    null.disk: made it
1795696462,null.disk,artifact-count,3
1795696462,null.disk,artifact,0,builder-id,fnoeding.null
1795696462,null.disk,artifact,0,id,Null
1795696462,null.disk,artifact,0,string,Did not export anything. This is the null builder
1795696462,null.disk,artifact,0,files-count,0
1795696462,null.disk,artifact,0,end
1795696462,null.disk,artifact,1,builder-id,packer.post-processor.artifice
1795696462,null.disk,artifact,1,id,
1795696462,null.disk,artifact,1,files-count,1
1795696462,null.disk,artifact,1,file,0,out/disk.raw
1795696462,null.disk,artifact,1,end
1795696462,null.disk,artifact,2,builder-id,packer.post-processor.compress
1795696462,null.disk,artifact,2,id,out/disk.raw.gz
1795696462,null.disk,artifact,2,files-count,1
1795696462,null.disk,artifact,2,file,0,out/disk%!(PACKER_COMMA)1.raw.gz
1795696462,null.disk,artifact,2,end
1795696462,qemu.other,artifact,0,builder-id,transcend.qemu
1795696462,qemu.other,artifact,0,file,0,output/a.qcow2
1795696477,,error-count,1
1795696477,null.bad,error,Script exited with non-zero exit status: 3.Allowed exit codes are: [0]
1795696477,,ui,error,--> null.bad: Script exited`

func TestStreamState(t *testing.T) {
	var st streamState
	for _, s := range strings.Split(capturedRun, "\n") {
		l, err := ParseLine(s)
		if err != nil {
			t.Fatal(err)
		}
		st.add(l)
	}
	fin := st.finalArtifacts()
	if len(fin) != 2 {
		t.Fatalf("final artifacts %+v", fin)
	}
	if a := fin["null.disk"]; a.builderID != "packer.post-processor.compress" || !reflect.DeepEqual(a.files, []string{"out/disk,1.raw.gz"}) {
		t.Errorf("null.disk final = %+v", a)
	}
	if a := fin["qemu.other"]; !reflect.DeepEqual(a.files, []string{"output/a.qcow2"}) {
		t.Errorf("qemu.other final = %+v", a)
	}
	if want := []string{"null.bad: Script exited with non-zero exit status: 3.Allowed exit codes are: [0]"}; !reflect.DeepEqual(st.buildErrors, want) {
		t.Errorf("build errors %q", st.buildErrors)
	}
	if len(st.uiErrors) != 1 {
		t.Errorf("ui errors %q", st.uiErrors)
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range strings.Split(capturedRun, "\n") {
		f.Add(s)
	}
	f.Add(`1,,ui,error,a%!(PACKER_COMMA)b\nc`)
	f.Add("1," + strings.Repeat(",", 200))
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLine(s)
		if err != nil {
			return
		}
		if len(l.Data) > maxFields+1 {
			t.Fatalf("%d fields kept", len(l.Data))
		}
		// What Packer would print for the parsed line parses back the same.
		again, err := ParseLine(FormatLine(l))
		if err != nil {
			t.Fatalf("FormatLine output does not parse: %v", err)
		}
		if len(l.Data) <= maxFields && !reflect.DeepEqual(again, l) {
			t.Fatalf("round trip changed the line:\n%+v\n%+v", l, again)
		}
		var st streamState
		st.add(l)
		st.finalArtifacts()
	})
}

func TestFormatLineRoundTrip(t *testing.T) {
	l := Line{Time: time.Unix(42, 0).UTC(), Target: "qemu.x", Type: "ui", Data: []string{"say", "a, b\nc\rd"}}
	s := FormatLine(l)
	if strings.ContainsAny(s, "\n\r") || strings.Count(s, ",") != 4 {
		t.Errorf("FormatLine = %q", s)
	}
	got, err := ParseLine(s)
	if err != nil || !reflect.DeepEqual(got, l) {
		t.Errorf("round trip = %+v, %v", got, err)
	}
}
