package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/airlock-proxy/airlock/proxy/admin"
	"github.com/airlock-proxy/airlock/verify"
	"github.com/airlock-proxy/airlock/verify/cirecord"
)

func newCICmd(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ci",
		Short: "Record what the organisation's CI built (admin API client, token scope ci)",
		Long: `Record, for artifacts of namespaces the policy declares built by CI (rules with
ci: true), the digest CI produced, so that Airlock serves exactly those bytes.
An artifact of such a namespace without a record is held ("not built by our
CI"); one whose upstream digest differs from its record is held with both.
A record that arrives after a version was held releases it when the digest
the proxy saw upstream matches.

Records are immutable: recording another digest for a recorded artifact is
refused and audited as an alert.

Run it in the release job with a token of scope ci (--token or AIRLOCK_TOKEN).`,
	}
	addClientFlags(cmd, g)
	cmd.AddCommand(newCIRecordCmd(g), newCIShowCmd(g), newCIImportCmd(g))
	return cmd
}

func newCIRecordCmd(g *globalFlags) *cobra.Command {
	var builder, commit string
	cmd := &cobra.Command{
		Use:   "record ARTIFACT DIGEST",
		Short: "Record one artifact's digest",
		Long: `Record one artifact's digest, in the form its upstream serves it:

  npm:@acme/app@1.2.3        sha512-<base64>  (dist.integrity)
  go:github.com/acme/app@v1.2.3  h1:<base64>  (the zip's line in go.sum)
  oci:ghcr/acme/app:1.2.3    sha256:<hex>     (the manifest or index the tag resolves to)`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := verify.ParseArtifact(args[0])
			if err != nil {
				return usageError{err}
			}
			c, err := newClient(g)
			if err != nil {
				return err
			}
			r := cirecord.Record{Artifact: a, Digest: args[1], Builder: builder, Commit: commit, Source: cirecord.SourceAPI}
			return sendRecords(cmd.Context(), c, g, cmd.OutOrStdout(), []cirecord.Record{r})
		},
	}
	cmd.Flags().StringVar(&builder, "builder", "", "who built it (a workflow identity, a SLSA builder id)")
	cmd.Flags().StringVar(&commit, "commit", "", "the source commit (hex)")
	return cmd
}

func newCIShowCmd(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ARTIFACT",
		Short: "Show an artifact's CI record",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(g)
			if err != nil {
				return err
			}
			var r cirecord.Record
			data, err := c.call(cmd.Context(), http.MethodGet, pathf("/admin/api/v1/ci/records/%s", args[0]), nil, nil, &r)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintf(tw, "Artifact:\t%s\n", clean(r.Artifact.String()))
			fmt.Fprintf(tw, "Digest:\t%s\n", clean(r.Digest))
			fmt.Fprintf(tw, "Builder:\t%s\n", orDash(clean(r.Builder)))
			fmt.Fprintf(tw, "Commit:\t%s\n", orDash(clean(r.Commit)))
			fmt.Fprintf(tw, "Source:\t%s\n", clean(r.Source))
			fmt.Fprintf(tw, "Recorded:\t%s\n", formatTime(r.Recorded))
			return tw.Flush()
		},
	}
}

// sendRecords posts each record and reports what became of it. A refused
// or failed record does not stop the others; any refusal or failure fails
// the command once all were tried. With --json it prints the answers (and
// the errors, as {"artifact", "error"}) as one JSON array.
func sendRecords(ctx context.Context, c *apiClient, g *globalFlags, w io.Writer, recs []cirecord.Record) error {
	failed := 0
	var results []json.RawMessage
	for _, r := range recs {
		req := admin.CIRecordRequest{
			Ecosystem: r.Artifact.Ecosystem, Name: r.Artifact.Name, Version: r.Artifact.Version,
			Digest: r.Digest, Builder: r.Builder, Commit: r.Commit, Source: r.Source,
		}
		var res admin.CIRecordResult
		data, err := c.call(ctx, http.MethodPost, "/admin/api/v1/ci/records", nil, req, &res)
		if err != nil {
			failed++
			msg := err.Error()
			var ae *apiError
			if errors.As(err, &ae) {
				msg = ae.message
			}
			if g.json {
				b, _ := json.Marshal(map[string]string{"artifact": r.Artifact.String(), "error": msg})
				results = append(results, b)
			} else {
				fmt.Fprintf(w, "REFUSED %s: %s\n", clean(r.Artifact.String()), clean(msg))
			}
			continue
		}
		if g.json {
			results = append(results, data)
			continue
		}
		what := "recorded"
		if !res.Created {
			what = "already recorded"
		}
		fmt.Fprintf(w, "%s %s %s\n", what, clean(res.Record.Artifact.String()), clean(res.Record.Digest))
		for _, id := range res.Released {
			fmt.Fprintf(w, "  released %s (airlock quarantine show %s)\n", clean(id), clean(id))
		}
	}
	if g.json {
		out, err := json.Marshal(results)
		if err != nil {
			return err
		}
		if err := printJSON(w, out); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d records refused or failed", failed, len(recs))
	}
	return nil
}
