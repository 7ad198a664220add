package transfer_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"imgpipe/internal/testenv"
	"imgpipe/internal/transfer"
)

// TestUploadQcow2 uploads qcow2 sources (plain, zlib- and zstd-compressed,
// with zero clusters) to Azurite: the downloaded page blob is an
// Azure-ready fixed VHD that qemu-img finds identical to the qcow2.
func TestUploadQcow2(t *testing.T) {
	testenv.RequireTool(t, "qemu-img")
	testenv.RequireTool(t, "qemu-io")
	env := startAzurite(t)
	dir := t.TempDir()
	size := int64(40*mib + 1536)
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, size, testPieces(size), 19)
	for _, c := range []struct {
		name string
		opts []string
		io   []string // qemu-io commands run on the result
	}{
		{"plain", nil, nil},
		{"zlib", []string{"-c"}, nil},
		{"zstd", []string{"-c", "-o", "compression_type=zstd"}, nil},
		{"zero-clusters", nil, []string{"write -z 0 64k", "write -z -u 10M 2M", "write -P 0x5a 30M 64k"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := filepath.Join(dir, c.name+".qcow2")
			qemuImg(t, append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, c.opts...), raw, src)...)
			if len(c.io) > 0 {
				args := []string{"-f", "qcow2"}
				for _, cmd := range c.io {
					args = append(args, "-c", cmd)
				}
				if out, err := exec.Command("qemu-io", append(args, src)...).CombinedOutput(); err != nil {
					t.Fatalf("qemu-io: %v\n%s", err, out)
				}
			}
			want := fixedVHD(t, src)
			name := "qcow2-" + c.name + ".vhd"
			res, err := transfer.Upload(context.Background(), src, env.target(t, env.az.BlobEndpoint, name, policy.RetryOptions{}),
				transfer.Options{Workers: 4})
			if err != nil {
				t.Fatal(err)
			}
			down := filepath.Join(dir, name)
			got := download(t, env.blob(t, name), down)
			if !bytes.Equal(got, want) {
				t.Fatalf("downloaded blob (%d bytes) differs from disk convert output (%d bytes)", len(got), len(want))
			}
			out, err := exec.Command("qemu-img", "compare", "-f", "vpc", "-F", "qcow2", down, src).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "identical") {
				t.Fatalf("qemu-img compare: %v\n%s", err, out)
			}
			if nz := nonZeroBytes(want); res.BytesSent != nz {
				t.Fatalf("sent %d bytes, the image has %d non-zero bytes", res.BytesSent, nz)
			}
		})
	}
}
