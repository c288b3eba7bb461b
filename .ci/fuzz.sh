#!/usr/bin/env bash
# .ci/fuzz.sh FUZZTIME — runs every Fuzz target of the module for FUZZTIME
# from its seeds. A failure that writes a reproducer (testdata/fuzz/<target>/)
# fails the run. Go 1.26's fuzz coordinator can also fail a target with a bare
# "context deadline exceeded" at the end of a duration -fuzztime, with no
# reproducer (golang/go#75804, fixed in Go 1.27): that target is run once more,
# and fails the run if it fails again.
set -euo pipefail
fuzztime=${1:?usage: fuzz.sh FUZZTIME}
go=${GO:-go}
# count prints how many files a directory holds (0 when it does not exist).
count() { if [[ -d $1 ]]; then find "$1" -type f | wc -l; else echo 0; fi; }
for pkg in $($go list ./...); do
	dir=$($go list -f '{{.Dir}}' "$pkg")
	for f in $($go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz $pkg $f"
		for attempt in 1 2; do
			before=$(count "$dir/testdata/fuzz/$f")
			log=$(mktemp)
			if $go test -run='^$' -fuzz="^$f\$" -fuzztime="$fuzztime" "$pkg" 2>&1 | tee "$log"; then
				rm -f "$log"
				break
			fi
			after=$(count "$dir/testdata/fuzz/$f")
			if [[ $attempt == 1 && $after == "$before" ]] && grep -q '^    context deadline exceeded$' "$log"; then
				echo "fuzz $pkg $f: the Go coordinator's deadline race (golang/go#75804), no reproducer written; running it again"
				rm -f "$log"
				continue
			fi
			rm -f "$log"
			exit 1
		done
	done
done
