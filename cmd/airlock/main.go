// Command airlock is the Airlock proxy and its admin client in one binary.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	// Time zones for policy.publish_window, also in a static image
	// without /usr/share/zoneinfo.
	_ "time/tzdata"

	"github.com/spf13/cobra"
)

// version is set by the release build (-ldflags "-X main.version=…").
var version = "dev"

// globalFlags are shared by the client subcommands that talk to a running
// server's admin API.
type globalFlags struct {
	server string // --server, AIRLOCK_URL
	token  string // --token, AIRLOCK_TOKEN, else <data>/admin-token
	data   string // --data, used to find the admin-token file
	json   bool   // --json
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError marks errors in how the command was called (exit status 2).
type usageError struct{ error }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "airlock",
		Short:         "A verifying pull-through proxy for Go modules, npm packages and OCI images",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: false,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	g := &globalFlags{}
	root.AddCommand(newServeCmd())
	root.AddCommand(newQuarantineCmd(g))
	root.AddCommand(newAuditCmd(g))
	root.AddCommand(newStatusCmd(g))
	root.AddCommand(newExplainCmd(g))
	root.AddCommand(newCICmd(g))
	return root
}

// envOr returns the environment variable key, or def when it is unset.
func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}
