//go:build !e2e

package main

import "time"

// serverClock is the clock of everything that judges age: cooldowns,
// packument freshness, tag moves. The e2e build shifts it
// (clock_e2e.go); release builds have no way to.
func serverClock() func() time.Time { return time.Now }
