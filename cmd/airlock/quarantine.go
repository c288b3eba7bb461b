package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"

	"github.com/spf13/cobra"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/admin"
)

func newQuarantineCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine",
		Short: "List, inspect, release and block held artifacts (admin API client)",
		Long: `Talk to a running server's admin API about quarantined artifacts.

The server is --server (env AIRLOCK_URL, default ` + defaultServer + `); the token is
--token, else env AIRLOCK_TOKEN, else the file <--data>/admin-token that serve
writes on its first start.`,
	}
	addClientFlags(cmd, g)
	cmd.AddCommand(newQuarantineListCmd(g), newQuarantineShowCmd(g), newQuarantineReleaseCmd(g), newQuarantineBlockCmd(g))
	return cmd
}

func newQuarantineListCmd(g *globalFlags) *cobra.Command {
	var state, ecosystem string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List quarantine records",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(g)
			if err != nil {
				return err
			}
			q := url.Values{}
			if state != "" {
				q.Set("state", state)
			}
			if ecosystem != "" {
				q.Set("ecosystem", ecosystem)
			}
			var l admin.QuarantineList
			data, err := c.call(cmd.Context(), http.MethodGet, "/admin/api/v1/quarantine", q, nil, &l)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			return printQuarantineList(cmd.OutOrStdout(), l.Quarantines)
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only records in this state: held, blocked or released")
	cmd.Flags().StringVar(&ecosystem, "ecosystem", "", "only artifacts of this ecosystem: go, npm or oci")
	return cmd
}

func newQuarantineShowCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a quarantine record with all its findings and their evidence",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(g)
			if err != nil {
				return err
			}
			var q cache.Quarantine
			data, err := c.call(cmd.Context(), http.MethodGet, pathf("/admin/api/v1/quarantine/%s", args[0]), nil, nil, &q)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			return printQuarantine(cmd.OutOrStdout(), q)
		},
	}
}

func newQuarantineReleaseCmd(g *globalFlags) *cobra.Command {
	var reason string
	var override bool
	cmd := &cobra.Command{
		Use:   "release ID --reason TEXT",
		Short: "Release a held or blocked artifact so that it is served again",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := requireReason(reason)
			if err != nil {
				return err
			}
			c, err := newClient(g)
			if err != nil {
				return err
			}
			var q cache.Quarantine
			data, err := c.call(cmd.Context(), http.MethodPost, pathf("/admin/api/v1/quarantine/%s/release", args[0]), nil,
				admin.ReleaseRequest{Reason: r, Override: override}, &q)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "released %s (%s)\n", clean(q.ID), clean(q.Artifact.String()))
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why it is safe to serve (required; recorded in the audit log)")
	cmd.Flags().BoolVar(&override, "override", false, "release even a version a known-malicious feed names")
	return cmd
}

func newQuarantineBlockCmd(g *globalFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "block ARTIFACT --reason TEXT",
		Short: "Keep an artifact from being served, e.g. go:github.com/x/y@v1.2.3",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := requireReason(reason)
			if err != nil {
				return err
			}
			c, err := newClient(g)
			if err != nil {
				return err
			}
			var q cache.Quarantine
			data, err := c.call(cmd.Context(), http.MethodPost, "/admin/api/v1/quarantine", nil,
				admin.BlockRequest{Artifact: args[0], Reason: r}, &q)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "blocked %s as %s\n", clean(q.Artifact.String()), clean(q.ID))
			return err
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why it must not be served (required; recorded in the audit log)")
	return cmd
}

func printQuarantineList(w io.Writer, list []cache.Quarantine) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no quarantine records")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tSTATE\tARTIFACT\tFIRST SEEN\tFINDING")
	for _, q := range list {
		finding := "-"
		if len(q.Findings) > 0 {
			finding = truncate(clean(q.Findings[0].Message), 60)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", clean(q.ID), clean(string(q.State)), clean(q.Artifact.String()),
			formatTime(q.FirstSeen), finding)
	}
	return tw.Flush()
}

func printQuarantine(w io.Writer, q cache.Quarantine) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "ID:\t%s\n", clean(q.ID))
	fmt.Fprintf(tw, "Artifact:\t%s\n", clean(q.Artifact.String()))
	if q.Artifact.Digest != "" {
		fmt.Fprintf(tw, "Digest:\t%s\n", clean(q.Artifact.Digest))
	}
	fmt.Fprintf(tw, "State:\t%s\n", clean(string(q.State)))
	fmt.Fprintf(tw, "First seen:\t%s\n", formatTime(q.FirstSeen))
	fmt.Fprintf(tw, "Updated:\t%s by %s\n", formatTime(q.Updated), orDash(clean(q.UpdatedBy)))
	if q.Reason != "" {
		fmt.Fprintf(tw, "Reason:\t%s\n", clean(q.Reason))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\nFindings (%d):\n", len(q.Findings))
	for i, f := range q.Findings {
		fmt.Fprintf(w, "  %d. [%s] %s\n", i+1, clean(f.Check), clean(f.Message))
		tw := newTable(w)
		for _, k := range slices.Sorted(maps.Keys(f.Evidence)) {
			fmt.Fprintf(tw, "       %s:\t%s\n", clean(k), clean(f.Evidence[k]))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if q.State.Hides() {
		_, err := fmt.Fprintf(w, "\nTo serve it: airlock quarantine release %s --reason \"…\"\n", clean(q.ID))
		return err
	}
	return nil
}
