package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/view"
)

func init() { register(newShowCmd) }

func newShowCmd() *cobra.Command {
	var doc string
	cmd := versionVerb("show IMAGE VERSION", "Show one version: provenance and every copy of it as a lineage tree",
		func(cmd *cobra.Command, c *catalog.Catalog, ref catalog.Ref) error {
			if doc != "" {
				return printDocument(cmd, c, ref, doc)
			}
			l, err := c.Lineage(cmd.Context(), ref)
			if err != nil {
				return err
			}
			if l.Tests, err = c.TestRuns(cmd.Context(), ref); err != nil {
				return err
			}
			return view.Show(stdout, jsonOutput(), l)
		})
	cmd.Flags().Bool("sbom", false, "print the version's CycloneDX SBOM instead")
	cmd.Flags().Bool("provenance", false, "print the version's signed provenance (DSSE envelope) instead")
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		for _, k := range []string{catalog.DocSBOM, catalog.DocProvenance} {
			if on, _ := cmd.Flags().GetBool(k); on {
				if doc != "" {
					return fmt.Errorf("--sbom and --provenance: choose one")
				}
				doc = k
			}
		}
		return nil
	}
	return cmd
}
