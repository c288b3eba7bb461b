package anomaly

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/airlock-proxy/airlock/verify"
)

// maxCommand bounds a command quoted in a finding.
const maxCommand = 200

// InstallScriptChanged finds an install hook whose command differs from
// the same hook's in the baseline: the nx compromise (2025-08-26) kept
// nx's postinstall and made it run telemetry.js, so a check of hook names
// alone saw nothing. A hook moved unchanged to another name (puppeteer
// 18.2.0: install to postinstall) is not a change, and neither is one
// that differs only in form (normCommand).
func InstallScriptChanged(h History, i int, settled time.Duration) *verify.Finding {
	prev, ok := h.baseline(i, settled)
	if !ok || len(prev.InstallCommands) == 0 {
		return nil
	}
	var was []string
	for _, c := range prev.InstallCommands {
		was = append(was, normCommand(c))
	}
	var changed []string
	ev := map[string]string{"previous": prev.Version}
	for _, hook := range slices.Sorted(maps.Keys(h[i].InstallCommands)) {
		cmd := h[i].InstallCommands[hook]
		old, had := prev.InstallCommands[hook]
		if !had || slices.Contains(was, normCommand(cmd)) {
			continue // new hooks are install-script-added's; moved ones are no change
		}
		changed = append(changed, hook)
		ev[hook] = clipCommand(cmd)
		ev["previous_"+hook] = clipCommand(old)
	}
	if len(changed) == 0 {
		return nil
	}
	var what []string
	for _, hook := range changed {
		what = append(what, fmt.Sprintf("%s from %q to %q", hook, ev["previous_"+hook], ev[hook]))
	}
	return &verify.Finding{Check: "install-script-changed",
		Message:  fmt.Sprintf("changes %s (as in %s)", strings.Join(what, ", "), prev.Version),
		Evidence: ev}
}

// normCommand drops what changes no code that runs: a "node" before the
// script, "./" before its path, a trailing "|| exit 0" or "|| true" (the
// failure tolerated), and spacing. What runs is the script file, whose
// content no command comparison sees; a new file or program is what this
// check is for.
func normCommand(c string) string {
	c = strings.Join(strings.Fields(c), " ")
	for {
		t := c
		for _, suffix := range []string{"|| exit 0", "|| (exit 0)", "|| true", "||true", "|| exit 0;", ";"} {
			t = strings.TrimSpace(strings.TrimSuffix(t, suffix))
		}
		if t == c {
			break
		}
		c = t
	}
	f := strings.Fields(c)
	if len(f) > 1 && f[0] == "node" {
		f = f[1:]
	}
	for i, w := range f {
		f[i] = strings.TrimPrefix(w, "./")
	}
	return strings.Join(f, " ")
}

func clipCommand(s string) string {
	if len(s) > maxCommand {
		return s[:maxCommand] + "…"
	}
	return s
}
