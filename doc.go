// Package airlock is the root of the Airlock module; the binary is
// cmd/airlock. This package holds only repository-wide tests.
package airlock
