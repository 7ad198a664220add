package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/server"
	"imgpipe/internal/view"
)

// The bearer tokens programs read the fleet server with (serve's sign-in
// flags are in cmd_serve.go).

func newServeTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Bearer tokens for programs that read the fleet server (create, list, revoke)"}
	var by string
	var expires time.Duration
	create := catalogVerb("create NAME", "Make a bearer token and print its secret (once)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			secret, t, err := server.CreateBearerToken(cmd.Context(), c, args[0], whoAmI(by), expires, time.Now())
			if err != nil {
				return err
			}
			return view.TokenCreated(stdout, os.Stderr, jsonOutput(), secret, t)
		})
	durationVar(create.Flags(), &expires, "expires", 0, "the token stops working after this long (default: never)")
	create.Flags().StringVar(&by, "by", "", "who makes it (default: the current user)")
	var all bool
	list := catalogVerb("list", "List bearer tokens (names and dates, never secrets)", cobra.NoArgs,
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			ts, err := c.AccessTokens(cmd.Context(), catalog.TokenBearer, all)
			if err != nil {
				return err
			}
			return draw(ts, view.AccessTokens(ts).String())
		})
	list.Flags().BoolVar(&all, "all", false, "include revoked tokens")
	revoke := catalogVerb("revoke NAME", "Revoke a bearer token: every replica refuses it from its next request", cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			t, err := c.RevokeBearerToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return draw(t, fmt.Sprintf("revoked the bearer token %s\n", t.Name))
		})
	cmd.AddCommand(create, list, revoke)
	return cmd
}
