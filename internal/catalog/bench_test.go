package catalog

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"imgpipe/internal/testenv"
)

// BenchmarkRecordPublish measures what one publish writes: a version, five
// lineage copies, a run with three steps, under the image lock.
func BenchmarkRecordPublish(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchRecordPublish(b, filepath.Join(b.TempDir(), "c.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		pg := testenv.StartPostgres(b)
		u, err := pg.CreateDatabase(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		benchRecordPublish(b, u)
	})
}

func benchRecordPublish(b *testing.B, loc string) {
	ctx := context.Background()
	c, err := Open(ctx, loc)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		err := c.WithImageLock(ctx, "web", "bench", func(ctx context.Context) error {
			ver := fmt.Sprintf("1.0.%d", i)
			ref := Ref{"web", ver}
			run, err := c.StartRun(ctx, Run{Kind: RunPublish, Image: "web", Version: ver})
			if err != nil {
				return err
			}
			if _, err := c.AddVersion(ctx, NewVersion{Image: "web", Version: ver, Provenance: Provenance{ArtifactSHA256: ver}}); err != nil {
				return err
			}
			parent := int64(0)
			for _, k := range []CopyKind{KindArtifact, KindBlob, KindManagedImage, KindGalleryVersion, KindRegion} {
				cp, err := c.PutCopy(ctx, ref, Copy{Kind: k, ResourceID: string(k) + "/" + ver, State: StateSucceeded, ParentID: parent})
				if err != nil {
					return err
				}
				parent = cp.ID
			}
			for _, s := range []string{"upload", "image", "version"} {
				if _, err := c.AddStep(ctx, run.ID, Step{Name: s, Status: RunSucceeded}); err != nil {
					return err
				}
			}
			return c.FinishRun(ctx, run.ID, nil)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}
