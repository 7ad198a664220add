package main

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"imgpipe/internal/drift"
	"imgpipe/internal/progress"
)

func init() { register(newBaselineCmd) }

func newBaselineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "baseline",
		Short: "Give an image its identity and record its configuration baseline",
		Long: `A baseline is the recorded configuration of an image: every file under the
configured paths (type, mode, owner, size, timestamps, inode, symlink target and
a content hash), the installed packages (dpkg, rpm) and the enabled services
(systemd). It is captured at build time, inside the image, and later compared
with the running system by "imgpipe drift check".`,
	}
	cmd.AddCommand(newBaselineCaptureCmd(), newBaselineShowCmd())
	return cmd
}

func newBaselineCaptureCmd() *cobra.Command {
	var (
		root, out, hash              string
		id                           drift.Identity
		noIdentity, noDefaultExclude bool
		rules                        drift.Rules
		workers                      int
	)
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Write the image identity and capture the configuration baseline of a tree",
		Long: `capture writes the image identity into the tree at --root (etc/imgpipe/identity.json,
and IMAGE_ID/IMAGE_VERSION in os-release; ProgramData/imgpipe on Windows trees),
then records the baseline and writes it to etc/imgpipe/baseline.bin (or --out).

Run it as the last provisioning step of the image build (for example a Packer
shell provisioner running "imgpipe baseline capture --root / ..."), or on a
mounted image tree.

By default the baseline covers the configuration-bearing paths of the platform
(Linux: etc, usr, boot, opt, srv and the /bin, /lib... links; Windows:
Windows/System32 and Program Files) and leaves out expected churn (var/log,
var/cache, tmp, per-instance files such as etc/machine-id, and imgpipe's own
files). --path replaces the paths; --exclude adds globs; "**" matches any
number of path elements and a pattern without "/" matches a name at any depth.

Content hashes are BLAKE3 by default (measured faster than SHA-256 on /usr,
see bench/drift.sh); --hash sha256 when a policy requires it.`,
		Example: `  # inside the image, at the end of the Packer build
  imgpipe baseline capture --root / --image web --version 1.4.0 --build-id "$BUILD_ID"

  # on a mounted or debootstrapped tree, with chosen paths
  imgpipe baseline capture --root /mnt/img --image web --version 1.4.0 \
      --path etc --path usr --exclude 'usr/share/doc/**'

  # a baseline only (no identity written), to a file outside the tree
  imgpipe baseline capture --root /srv/tree --no-identity --path . --out /tmp/tree.baseline`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if root == "" {
				return fmt.Errorf("--root is required (use --root / on the image itself)")
			}
			if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
				return fmt.Errorf("--root %s is not a directory", root)
			}
			if !noIdentity && (id.Image == "" || id.Version == "") {
				return fmt.Errorf("--image and --version are required to write the identity (or give --no-identity)")
			}
			r := drift.DefaultRules(runtime.GOOS)
			if len(rules.Paths) > 0 {
				r.Paths = rules.Paths
			}
			if noDefaultExclude {
				r.Exclude = nil
			}
			r.Exclude = append(r.Exclude, rules.Exclude...)
			r.Include = rules.Include
			var idRes drift.IdentityResult
			opts := drift.CaptureOptions{Rules: r, Hash: hash, Workers: workers}
			if !noIdentity {
				id.CapturedAt = time.Now().UTC().Format(time.RFC3339)
				var err error
				if idRes, err = drift.WriteIdentity(root, id); err != nil {
					return fmt.Errorf("write identity: %w", err)
				}
				opts.Identity = &id
			}
			if out == "" {
				p, err := drift.BaselinePath(root)
				if err != nil {
					return err
				}
				out = p
			}
			pf, finish := driftCountBar("capturing baseline")
			opts.Progress = pf
			b, err := drift.Capture(cmd.Context(), root, opts)
			finish()
			if err != nil {
				return err
			}
			size, err := drift.WriteBaselineFile(out, b)
			if err != nil {
				return err
			}
			res := map[string]any{
				"baseline_file": out, "baseline_bytes": size, "hash": b.Hash,
				"stats": b.Stats, "packages": len(b.Packages), "services": len(b.Services),
				"collectors": b.Collectors, "problems": b.Problems, "rules": b.Rules,
			}
			if !noIdentity {
				res["identity"] = b.Identity
				res["identity_file"] = idRes.IdentityFile
				res["os_release"] = idRes.OSRelease
			}
			if jsonOutput() {
				return printJSON(res)
			}
			if !noIdentity {
				fmt.Fprintf(stdout, "identity: %s %s written to %s", id.Image, id.Version, idRes.IdentityFile)
				if idRes.OSRelease != "" {
					fmt.Fprintf(stdout, " and %s", idRes.OSRelease)
				}
				fmt.Fprintln(stdout)
			}
			fmt.Fprintf(stdout, "baseline: %d entries (%d hashed, %s, %s) written to %s (%s)\n",
				b.Stats.Entries, b.Stats.Hashed, sizeIEC(b.Stats.BytesHashed), b.Hash, out, sizeIEC(size))
			fmt.Fprintf(stdout, "packages: %d, services: %d\n", len(b.Packages), len(b.Services))
			for _, c := range b.Collectors {
				fmt.Fprintf(stdout, "  %-8s %-15s %s\n", c.Name, c.Status, c.Detail)
			}
			printDriftProblems(b.Problems, 20)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "", "root of the image tree (/ on the image itself)")
	f.StringVar(&id.Image, "image", "", "image name")
	f.StringVar(&id.Version, "version", "", "image version")
	f.StringVar(&id.BuildID, "build-id", "", "build id (for example the CI run)")
	f.StringVar(&id.CatalogID, "catalog-id", "", "catalog id of the image version")
	f.BoolVar(&noIdentity, "no-identity", false, "capture the baseline only; write no identity")
	f.StringArrayVar(&rules.Paths, "path", nil, "path to cover, relative to --root (repeatable; default: platform paths; . for everything)")
	f.StringArrayVar(&rules.Include, "include", nil, "record only entries matching this glob (repeatable)")
	f.StringArrayVar(&rules.Exclude, "exclude", nil, "leave out entries matching this glob (repeatable; adds to the defaults)")
	f.BoolVar(&noDefaultExclude, "no-default-excludes", false, "do not apply the default excludes (logs, caches, per-instance files)")
	f.StringVar(&hash, "hash", drift.DefaultHash, "content hash: blake3 or sha256")
	f.StringVar(&out, "out", "", "baseline file (default: etc/imgpipe/baseline.bin inside --root)")
	f.IntVar(&workers, "workers", 0, "parallel walkers and hashers (default: number of CPUs)")
	return cmd
}

func newBaselineShowCmd() *cobra.Command {
	var files bool
	cmd := &cobra.Command{
		Use:   "show FILE",
		Short: "Print a baseline file: identity, rules, collectors, packages, services and optionally files",
		Example: `  imgpipe baseline show /etc/imgpipe/baseline.bin
  imgpipe baseline show --files -o json /mnt/img/etc/imgpipe/baseline.bin | jq '.files | length'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := drift.ReadBaselineFile(args[0])
			if err != nil {
				return err
			}
			if jsonOutput() {
				type fileJSON struct {
					Path  drift.Name     `json:"path"`
					Type  drift.FileType `json:"type"`
					Mode  string         `json:"mode"`
					UID   uint32         `json:"uid"`
					GID   uint32         `json:"gid"`
					Size  int64          `json:"size"`
					Link  drift.Name     `json:"target,omitempty"`
					Hash  string         `json:"hash,omitempty"`
					Error string         `json:"error,omitempty"`
				}
				v := struct {
					*drift.Baseline
					Entries int        `json:"entries"`
					Files   []fileJSON `json:"files,omitempty"`
				}{Baseline: b, Entries: len(b.Files)}
				if files {
					for _, e := range b.Files {
						fj := fileJSON{Path: e.Path, Type: e.Type, Mode: fmt.Sprintf("%04o", e.Mode), UID: e.UID, GID: e.GID, Size: e.Size, Link: drift.Name(e.Link), Error: e.Err}
						if e.HasHash {
							fj.Hash = fmt.Sprintf("%x", e.Hash)
						}
						v.Files = append(v.Files, fj)
					}
				}
				return printJSON(v)
			}
			if b.Identity != nil {
				fmt.Fprintf(stdout, "image:      %s %s (build %s, catalog %s)\n", b.Identity.Image, b.Identity.Version, b.Identity.BuildID, b.Identity.CatalogID)
			}
			fmt.Fprintf(stdout, "captured:   %s on %s, hash %s\n", b.CapturedAt.Format(time.RFC3339), b.Platform, b.Hash)
			fmt.Fprintf(stdout, "paths:      %v\nexcludes:   %v\n", b.Rules.Paths, b.Rules.Exclude)
			fmt.Fprintf(stdout, "entries:    %d\npackages:   %d\nservices:   %d\n", len(b.Files), len(b.Packages), len(b.Services))
			for _, c := range b.Collectors {
				fmt.Fprintf(stdout, "  %-8s %-15s %s\n", c.Name, c.Status, c.Detail)
			}
			if files {
				rows := make([][]string, 0, len(b.Files))
				for _, e := range b.Files {
					h := ""
					if e.HasHash {
						h = fmt.Sprintf("%x", e.Hash[:8])
					}
					rows = append(rows, []string{e.Path.String(), e.Type.String(), fmt.Sprintf("%04o", e.Mode), fmt.Sprintf("%d:%d", e.UID, e.GID), fmt.Sprint(e.Size), h})
				}
				return printTable([]string{"PATH", "TYPE", "MODE", "OWNER", "SIZE", "HASH"}, rows)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&files, "files", false, "list every recorded entry")
	return cmd
}

func printDriftProblems(ps []drift.Problem, max int) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(stdout, "problems: %d entries could not be fully examined\n", len(ps))
	for i, p := range ps {
		if i == max {
			fmt.Fprintf(stdout, "  ... %d more (use --output json for all)\n", len(ps)-max)
			break
		}
		fmt.Fprintf(stdout, "  %s: %s\n", p.Path, p.Err)
	}
}

// driftCountBar draws an entry-count progress bar on a terminal (total may be
// unknown: 0), and nothing otherwise.
func driftCountBar(description string) (progress.Func, func()) {
	if !isTerminal(os.Stderr) || jsonOutput() {
		return nil, func() {}
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("files"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	var last atomic.Int64
	return func(done, total int64) {
			// Called for every entry from many goroutines: draw at most every 1000.
			if done-last.Load() < 1000 && done != total {
				return
			}
			last.Store(done)
			if total > 0 {
				bar.ChangeMax64(total)
			}
			_ = bar.Set64(done)
		}, func() {
			_ = bar.Finish()
		}
}
