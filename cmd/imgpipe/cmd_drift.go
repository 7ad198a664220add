package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/drift"
)

func init() { register(newDriftCmd) }

func newDriftCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "Compare a running system with the configuration baseline of its image",
	}
	cmd.AddCommand(newDriftCheckCmd())
	return cmd
}

func newDriftCheckCmd() *cobra.Command {
	var (
		root, baseline string
		quick          bool
		ignore         []string
		workers, limit int
		cpuProfile     string
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Report files, packages and services that differ from the baseline (exit 2 on drift)",
		Long: `check walks the paths recorded in the baseline and reports:
  files     added, removed, or changed, naming what changed: content, mode,
            owner, size, type, target (symlinks), device
  packages  added, removed, or changed in version (dpkg, rpm)
  services  systemd units enabled, disabled, masked, added or removed
  problems  entries that could not be examined (unreadable, vanished or
            changed during the walk); they do not stop the check

Exit status: 0 no drift, 2 drift found, 1 the check itself failed.

A full check hashes every file. --quick re-hashes only files whose size,
mtime, ctime or inode changed since the baseline, like git's index: cheap
enough to run every few minutes. It trusts that the kernel's ctime changes on
every write, chmod and chown (user space cannot set ctime), and re-hashes
files touched within 2s of the capture ("racy" timestamps). It does not
protect against someone who can reset the clock or edit the disk directly:
schedule a full check too.

--ignore adds globs for expected churn on top of the baseline's excludes
(baselines captured with the default excludes already leave out var/log,
var/cache, tmp, per-instance files and imgpipe's own files).`,
		Example: `  # on the VM: full check against the baseline baked into the image
  imgpipe drift check

  # every 5 minutes from a timer, cheap
  imgpipe drift check --quick --ignore 'etc/cron.d/local-*' -o json

  # a mounted image tree against a baseline kept elsewhere
  imgpipe drift check --root /mnt/img --baseline /srv/baselines/web-1.4.0.bin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			if baseline == "" {
				p, err := drift.BaselinePath(root)
				if err != nil {
					return err
				}
				baseline = p
			}
			b, err := drift.ReadBaselineFile(baseline)
			if err != nil {
				return err
			}
			depth := drift.Full
			if quick {
				depth = drift.Quick
			}
			pf, finish := driftCountBar("checking")
			r, err := drift.Check(cmd.Context(), root, b, drift.CheckOptions{Depth: depth, Ignore: ignore, Workers: workers, Progress: pf})
			finish()
			if err != nil {
				return err
			}
			if limit > 0 {
				r.Limit(limit)
			}
			if jsonOutput() {
				if err := printJSON(r); err != nil {
					return err
				}
			} else {
				printDriftReport(r)
			}
			if r.Drifted {
				return negative(nil)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "/", "root of the tree to check")
	f.StringVar(&baseline, "baseline", "", "baseline file (default: etc/imgpipe/baseline.bin inside --root)")
	f.BoolVar(&quick, "quick", false, "re-hash only files whose size, mtime, ctime or inode changed")
	f.StringArrayVar(&ignore, "ignore", nil, "ignore paths matching this glob (repeatable)")
	f.IntVar(&workers, "workers", 0, "parallel walkers and hashers (default: number of CPUs)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the check to this file")
	_ = f.MarkHidden("cpuprofile")
	f.IntVar(&limit, "limit", 0, "report at most this many file changes and problems (0: all); the summary counts all")
	return cmd
}

func printDriftReport(r *drift.Report) {
	w := stdout
	if r.Identity != nil {
		fmt.Fprintf(w, "image %s %s, baseline of %s\n", r.Identity.Image, r.Identity.Version, r.BaselineAt.Format("2006-01-02 15:04:05Z07:00"))
	}
	for _, f := range r.Files {
		switch f.Kind {
		case drift.Changed:
			fmt.Fprintf(w, "changed  %s (%s)%s\n", f.Path, strings.Join(f.Changed, ", "), changeDetail(f))
		case drift.Added:
			fmt.Fprintf(w, "added    %s (%s)\n", f.Path, f.New.Type)
		default:
			fmt.Fprintf(w, "removed  %s (%s)\n", f.Path, f.Old.Type)
		}
	}
	for _, p := range r.Packages {
		name := p.Manager + ":" + p.Name
		if p.Arch != "" {
			name += ":" + p.Arch
		}
		switch p.Kind {
		case drift.Added:
			fmt.Fprintf(w, "package  added    %s %s\n", name, p.New)
		case drift.Removed:
			fmt.Fprintf(w, "package  removed  %s %s\n", name, p.Old)
		default:
			fmt.Fprintf(w, "package  changed  %s %s -> %s\n", name, p.Old, p.New)
		}
	}
	for _, s := range r.Services {
		switch s.Kind {
		case drift.Added:
			fmt.Fprintf(w, "service  added    %s %s\n", s.Unit, s.New)
		case drift.Removed:
			fmt.Fprintf(w, "service  removed  %s %s\n", s.Unit, s.Old)
		default:
			fmt.Fprintf(w, "service  changed  %s %s -> %s\n", s.Unit, s.Old, s.New)
		}
	}
	for _, c := range r.Collectors {
		if c.Status != drift.CollectorOK && c.Status != drift.CollectorAbsent {
			fmt.Fprintf(w, "note     %s: %s (%s)\n", c.Name, c.Status, c.Detail)
		}
	}
	printDriftProblems(r.Problems, 50)
	if r.Truncated > 0 {
		fmt.Fprintf(w, "(%d findings left out by --limit)\n", r.Truncated)
	}
	verdict := "no drift"
	if r.Drifted {
		verdict = "DRIFTED"
	}
	s := r.Summary
	fmt.Fprintf(w, "%s: %d added, %d removed, %d changed files; %d package and %d service changes; %d problems (%s check of %d entries, %d hashed, %.1fs)\n",
		verdict, s.FilesAdded, s.FilesRemoved, s.FilesChanged, s.Packages, s.Services, s.Problems,
		r.Depth, r.Stats.Entries, r.Stats.Hashed, float64(r.DurationMS)/1000)
}

// startCPUProfile writes a pprof CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func changeDetail(f drift.FileChange) string {
	if f.Old == nil || f.New == nil {
		return ""
	}
	var d []string
	for _, a := range f.Changed {
		switch a {
		case drift.AttrMode:
			d = append(d, "mode "+f.Old.Mode+" -> "+f.New.Mode)
		case drift.AttrOwner:
			d = append(d, fmt.Sprintf("owner %d:%d -> %d:%d", f.Old.UID, f.Old.GID, f.New.UID, f.New.GID))
		case drift.AttrType:
			d = append(d, "type "+f.Old.Type.String()+" -> "+f.New.Type.String())
		case drift.AttrTarget:
			d = append(d, "target "+f.Old.Link.String()+" -> "+f.New.Link.String())
		}
	}
	if len(d) == 0 {
		return ""
	}
	return ": " + strings.Join(d, "; ")
}
