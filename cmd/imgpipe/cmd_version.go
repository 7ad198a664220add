package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

func init() { register(newVersionCmd) }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the imgpipe version and the revision it was built from",
		Example: `  imgpipe version
  imgpipe version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			info := map[string]string{"version": "dev"}
			if bi, ok := debug.ReadBuildInfo(); ok {
				info["go"] = bi.GoVersion
				if rev := revision(bi); rev != "" {
					info["revision"] = rev
				}
			}
			return draw(info, fmt.Sprintf("imgpipe %s (revision %s, %s)\n", info["version"], info["revision"], info["go"]))
		},
	}
}

// revision is the VCS revision the binary was built from ("" if unknown).
func revision(bi *debug.BuildInfo) string {
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			return s.Value
		}
	}
	return ""
}

// toolVersion names this imgpipe build in documents it writes:
// VERSION+REVISION, "dev" for a development build.
func toolVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	v := "dev"
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	if rev := revision(bi); rev != "" {
		return v + "+" + rev
	}
	return v
}
