//go:build e2e

package main

import (
	"fmt"
	"os"
	"time"
)

// serverClock, in the binary the end-to-end tests build (-tags e2e), runs
// AIRLOCK_E2E_CLOCK_OFFSET (a Go duration) ahead of the real clock, so
// that a test can restart Airlock a day later and see a cooldown end.
// Release builds leave this file out.
func serverClock() func() time.Time {
	s := os.Getenv("AIRLOCK_E2E_CLOCK_OFFSET")
	if s == "" {
		return time.Now
	}
	off, err := time.ParseDuration(s)
	if err != nil {
		panic(fmt.Sprintf("AIRLOCK_E2E_CLOCK_OFFSET=%q: %v", s, err))
	}
	return func() time.Time { return time.Now().Add(off) }
}
