package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"

	"github.com/spf13/cobra"

	"github.com/airlock-proxy/airlock/verify/policy"
)

func newExplainCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explain ARTIFACT",
		Short: "Run every check on an artifact and show what each found and what policy makes of it (admin API client)",
		Long: `Run the checks on one artifact, as the server would before serving it, without
serving it: each check's result, the finding and its evidence, the action the
policy maps it to, the resulting verdict, and the artifact's quarantine record
if it has one. ARTIFACT is npm:name@version, go:module@version, or
oci:upstream/repository:tag (or @sha256:…).`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(g)
			if err != nil {
				return err
			}
			var x policy.Explanation
			data, err := c.call(cmd.Context(), http.MethodGet, pathf("/admin/api/v1/explain/%s", args[0]), nil, nil, &x)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			return printExplanation(cmd.OutOrStdout(), x)
		},
	}
	addClientFlags(cmd, g)
	return cmd
}

func printExplanation(w io.Writer, x policy.Explanation) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Artifact:\t%s\n", clean(x.Artifact.String()))
	rule := x.Rule
	if rule == "" {
		rule = "defaults"
	}
	fmt.Fprintf(tw, "Policy:\t%s (%s)\n", clean(string(x.Mode)), clean(rule))
	fmt.Fprintf(tw, "Verdict:\t%s\n", clean(string(x.Verdict)))
	if x.Quarantine != "" {
		fmt.Fprintf(tw, "Record:\t%s %s (airlock quarantine show %s)\n", clean(x.Quarantine), clean(x.State), clean(x.Quarantine))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nChecks:\n")
	tw = newTable(w)
	for _, c := range x.Checks {
		what := c.Note
		if c.Finding != nil {
			what = c.Finding.Message
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", clean(c.Check), clean(c.Result), orDash(clean(string(c.Action))), truncate(clean(what), 110))
		if c.Finding != nil {
			for _, k := range slices.Sorted(maps.Keys(c.Finding.Evidence)) {
				if c.Finding.Evidence[k] == "" {
					continue
				}
				fmt.Fprintf(tw, "  \t\t%s:\t%s\n", clean(k), truncate(clean(c.Finding.Evidence[k]), 100))
			}
		}
	}
	return tw.Flush()
}
