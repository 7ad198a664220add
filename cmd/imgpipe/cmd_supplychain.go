package main

// The supply-chain verbs: key (make and trust signing keys), sbom (record,
// show, diff a version's CycloneDX SBOM), attest (sign a version's
// provenance) and verify (check it against every copy).

import (
	"fmt"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/supplychain"
	"imgpipe/internal/view"
)

func init() {
	register(newKeyCmd)
	register(newSBOMCmd)
	register(newAttestCmd)
	register(newVerifyCmd)
}

func newKeyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Make and trust the keys that sign provenance and attestations"}
	var out, by string
	gen := &cobra.Command{Use: "generate --out PREFIX", Short: "Make an ed25519 signing key pair: PREFIX.pem (private, mode 0600) and PREFIX.pub.pem",
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
			k, err := supplychain.GenerateKeyPair(out)
			if err != nil {
				return err
			}
			return draw(k, k.Text())
		}}
	gen.Flags().StringVar(&out, "out", "", "path prefix of the key files")
	trust := catalogVerb("trust PUBLIC.pem", "Trust a public key: prod promotions then need provenance it signed", cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			k, err := supplychain.Trust(cmd.Context(), c, args[0], whoAmI(by))
			if err != nil {
				return err
			}
			return draw(k, fmt.Sprintf("trusted key %s: promotion to prod now needs a provenance it signed\n", k.KeyID))
		})
	trust.Flags().StringVar(&by, "by", "", "who trusts it (default $USER)")
	list := catalogVerb("list", "List the keys the catalog trusts", cobra.NoArgs, func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
		ks, err := c.TrustedKeys(cmd.Context())
		if err != nil {
			return err
		}
		return view.TrustedKeys(stdout, jsonOutput(), ks)
	})
	cmd.AddCommand(gen, trust, list)
	return cmd
}

func newSBOMCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sbom", Short: "Record, show and compare the CycloneDX SBOM of image versions"}
	var baseline string
	record := versionVerb("record IMAGE VERSION --baseline FILE", "Make the SBOM of a version from its baseline file and store it in the catalog",
		func(cmd *cobra.Command, c *catalog.Catalog, ref catalog.Ref) error {
			r, err := supplychain.RecordSBOMFile(cmd.Context(), c, ref, baseline, toolVersion())
			if err != nil {
				return err
			}
			return draw(r.Document, r.Text(ref))
		})
	record.Flags().StringVar(&baseline, "baseline", "", "baseline file of the version")
	show := versionVerb("show IMAGE VERSION", "Print the stored CycloneDX document of a version", func(cmd *cobra.Command, c *catalog.Catalog, ref catalog.Ref) error {
		return printDocument(cmd, c, ref, catalog.DocSBOM)
	})
	diff := catalogVerb("diff IMAGE FROM TO", "Name the packages added, removed and upgraded between two versions", cobra.ExactArgs(3),
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			d, err := supplychain.DiffVersions(cmd.Context(), c, args[0], args[1], args[2])
			if err != nil {
				return err
			}
			return view.SBOMDiff(stdout, jsonOutput(), d, args[0], args[1], args[2])
		})
	cmd.AddCommand(record, show, diff)
	return cmd
}

func newAttestCmd() *cobra.Command {
	var key, template string
	var params []string
	cmd := versionVerb("attest IMAGE VERSION --key PRIVATE.pem", "Sign the provenance of a version (SLSA v1 in-toto statement, DSSE envelope)",
		func(cmd *cobra.Command, c *catalog.Catalog, ref catalog.Ref) error {
			a, err := supplychain.Attest(cmd.Context(), c, ref, key, params, supplychain.ProvenanceInput{ImgpipeVersion: toolVersion(), Template: template})
			if err != nil {
				return err
			}
			return draw(a, a.Text(ref))
		})
	cmd.Flags().StringVar(&key, "key", "", "private signing key (PEM)")
	cmd.Flags().StringVar(&template, "template", "", "the Packer template the version was built from, as given to Packer")
	cmd.Flags().StringArrayVar(&params, "param", nil, "a build parameter NAME=VALUE to record (repeatable; never secrets)")
	return cmd
}

func newVerifyCmd() *cobra.Command {
	var key string
	var requireTest bool
	cmd := versionVerb("verify IMAGE VERSION [--key PUBLIC.pem]", "Check a version's signed provenance against its artifact and every copy",
		func(cmd *cobra.Command, c *catalog.Catalog, ref catalog.Ref) error {
			r, err := supplychain.VerifyWithKey(cmd.Context(), c, ref, key, requireTest)
			if err != nil {
				return err
			}
			return answer(draw(r, r.Text(ref)), r.Verified)
		})
	cmd.Flags().StringVar(&key, "key", "", "public key to verify with (default: the keys the catalog trusts)")
	cmd.Flags().BoolVar(&requireTest, "require-test", false, "fail when no signed, passing test result exists")
	return cmd
}

// printDocument writes a stored document of a version as it is (show --sbom,
// show --provenance).
func printDocument(cmd *cobra.Command, c *catalog.Catalog, ref catalog.Ref, kind string) error {
	b, err := supplychain.Document(cmd.Context(), c, ref, kind)
	if err == nil {
		_, err = stdout.Write(b)
	}
	return err
}

// draw prints v as JSON under -o json, else text.
func draw(v any, text string) error {
	return view.Write(stdout, jsonOutput(), v, text)
}

// answer is a verb's outcome once drawn: drawErr, else a negative answer
// (exit 2) unless yes.
func answer(drawErr error, yes bool) error {
	if drawErr != nil || yes {
		return drawErr
	}
	return negative(nil)
}

// catalogVerb is a verb run with the required catalog (its --catalog flag
// added; see withCatalog).
func catalogVerb(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, args []string, c *catalog.Catalog) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, args []string) error {
		return withCatalog(cmd, required, func(c *catalog.Catalog) error { return run(cmd, args, c) })
	}}
	addCatalogFlag(cmd, nil)
	return cmd
}

// versionVerb is a verb on IMAGE VERSION (or IMAGE@VERSION) in the required
// catalog (see withVersion).
func versionVerb(use, short string, run func(cmd *cobra.Command, c *catalog.Catalog, ref catalog.Ref) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: refArgs, RunE: func(cmd *cobra.Command, args []string) error {
		return withVersion(cmd, args, func(c *catalog.Catalog, ref catalog.Ref) error { return run(cmd, c, ref) })
	}}
	addCatalogFlag(cmd, nil)
	return cmd
}
