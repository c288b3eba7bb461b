package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/airlock-proxy/airlock/cache"
	"github.com/airlock-proxy/airlock/proxy/admin"
)

func newAuditCmd(g *globalFlags) *cobra.Command {
	var after uint64
	var limit int
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log: every decision, hold, release and block (admin API client)",
		Long: `Show the audit log of a running server, oldest first. Page with --after:
pass the last SEQ shown to see what follows.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return usageError{fmt.Errorf("--limit %d: want 1 to 1000", limit)}
			}
			c, err := newClient(g)
			if err != nil {
				return err
			}
			q := url.Values{}
			q.Set("after", strconv.FormatUint(after, 10))
			q.Set("limit", strconv.Itoa(limit))
			var l admin.AuditLog
			data, err := c.call(cmd.Context(), http.MethodGet, "/admin/api/v1/audit", q, nil, &l)
			if err != nil {
				return err
			}
			if g.json {
				return printJSON(cmd.OutOrStdout(), data)
			}
			if err := printAudit(cmd.OutOrStdout(), l.Events); err != nil {
				return err
			}
			if n := len(l.Events); n == limit {
				// On stderr, so that the table stays clean for tools.
				fmt.Fprintf(cmd.ErrOrStderr(), "(more may follow: airlock audit --after %d)\n", l.Events[n-1].Seq)
			}
			return nil
		},
	}
	addClientFlags(cmd, g)
	cmd.Flags().Uint64Var(&after, "after", 0, "show events after this sequence number")
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many events (1 to 1000)")
	return cmd
}

func printAudit(w io.Writer, events []cache.AuditEvent) error {
	if len(events) == 0 {
		_, err := fmt.Fprintln(w, "no audit events")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tARTIFACT/ID\tREASON")
	for _, e := range events {
		subject := e.Artifact
		switch {
		case subject == "":
			subject = e.QuarantineID
		case e.QuarantineID != "":
			subject += " (" + e.QuarantineID + ")"
		}
		// Events without a reason (a check's decision) carry their
		// summary in Detail, which says as much.
		reason := e.Reason
		if reason == "" {
			reason = e.Detail
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, formatTime(e.Time), orDash(clean(e.Actor)), orDash(clean(e.Action)),
			orDash(clean(subject)), orDash(truncate(clean(reason), 60)))
	}
	return tw.Flush()
}
