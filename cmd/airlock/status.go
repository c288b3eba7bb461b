package main

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"

	"github.com/spf13/cobra"

	"github.com/airlock-proxy/airlock/cache"
)

// artifactStatus is the admin API's answer for one artifact.
type artifactStatus struct {
	cache.Status
	Observation *cache.Observation `json:"observation,omitempty"`
}

func newStatusCmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status ARTIFACT",
		Short: "Show what Airlock decided about an artifact and the facts it recorded (admin API client)",
		Long: `Show the decision on one artifact, its quarantine record if any, and the facts
Airlock recorded when it first saw each (digests, publish time, publisher,
provenance…). ARTIFACT is written as go:path@version, npm:name@version or
oci:repo@digest.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(g)
			if err != nil {
				return err
			}
			var st artifactStatus
			data, err := c.call(cmd.Context(), http.MethodGet, pathf("/admin/api/v1/artifacts/%s", args[0]), nil, nil, &st)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			return printStatus(cmd.OutOrStdout(), args[0], st)
		},
	}
	addClientFlags(cmd, g)
	return cmd
}

func printStatus(w io.Writer, name string, st artifactStatus) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "Artifact:\t%s\n", clean(name))
	if st.Decision.Verdict != "" {
		fmt.Fprintf(tw, "Decision:\t%s (%s)\n", clean(string(st.Decision.Verdict)), formatTime(st.Decided))
	} else {
		fmt.Fprintf(tw, "Decision:\tnone yet\n")
	}
	if q := st.Quarantine; q != nil {
		fmt.Fprintf(tw, "Quarantine:\t%s %s (airlock quarantine show %s)\n", clean(q.ID), clean(string(q.State)), clean(q.ID))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if o := st.Observation; o != nil {
		fmt.Fprintf(w, "\nObserved (first seen):\n")
		tw := newTable(w)
		for _, k := range slices.Sorted(maps.Keys(o.Fields)) {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", clean(k), orDash(truncate(clean(o.Fields[k]), 100)), formatTime(o.Seen[k]))
		}
		return tw.Flush()
	}
	return nil
}
