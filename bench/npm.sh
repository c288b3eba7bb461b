#!/usr/bin/env bash
# bench/npm.sh — Airlock's npm front beside the upstream and Verdaccio, in one pass.
#
# Uses the shared peer harness (../shared/bench, or SHARED_BENCH) and its fixture: a
# project of express, chalk, debug, lodash and react (84 packages, lockfile without
# resolved URLs). npm-bench.sh installs it with a fresh npm cache each run. Phases:
#   1. direct     against the upstream registry
#   2. airlock    cold (data wiped and Airlock restarted before each run: every
#                 packument fetched and every tarball downloaded and checked), then warm
#   3. verdaccio  cold (storage wiped and restarted before each run), then warm
# Airlock runs with every check the upstream allows. The registry reachable from the
# project's machines is a mirror without dist.signatures or keys, so KEYS defaults to
# none there (integrity, publish time and, where present, provenance are still checked);
# against registry.npmjs.org set KEYS=default. The publish-time checks run in dry-run
# (POLICY_MODE): the mirror's publish times are partly its ingest times, so the cooldown
# would hold old versions; the checks' cost is still measured.
#
# Usage: bench/npm.sh            (results in $RESULTS_DIR, summary on stderr)
# Env:   RUNS (5), PHASES ("direct airlock verdaccio"), AIRLOCK_ADDR (127.0.0.1:5020),
#        UPSTREAM ($(npm config get registry)), KEYS (none), BENCH_ROOT (/tmp/airlock-bench),
#        SHARED_BENCH, NO_TMPFS=1.
#   bench/npm.sh reset | stop    (used internally as RESET_CMD)
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$(cd "${REPO}/../shared/bench" 2>/dev/null && pwd || true)}
[[ -n $SHARED_BENCH && -x ${SHARED_BENCH}/npm-bench.sh ]] || { echo "shared bench harness not found; set SHARED_BENCH" >&2; exit 1; }
export BENCH_ROOT=${BENCH_ROOT:-/tmp/airlock-bench}
source "${SHARED_BENCH}/lib.sh"

AIRLOCK_ADDR=${AIRLOCK_ADDR:-127.0.0.1:5020}
UPSTREAM=${UPSTREAM:-$(npm config get registry)}
UPSTREAM=${UPSTREAM%/}
A=${BENCH_ROOT}/airlock-npm
PIDF=${RUN_DIR}/airlock-npm.pid

start() {
  mkdir -p "${A}/data"
  cat >"${A}/airlock.yaml" <<EOF
listen: ${AIRLOCK_ADDR}
data: ${A}/data
log: {format: json, level: warn}
npm:
  upstream: ${UPSTREAM}
  keys: ${KEYS:-none}
policy:
  mode: ${POLICY_MODE:-dry-run}
EOF
  port_free "$AIRLOCK_ADDR"
  "${A}/airlock" serve --config "${A}/airlock.yaml" >>"${A}/airlock.log" 2>&1 &
  echo $! >"$PIDF"
  wait_http "http://${AIRLOCK_ADDR}/readyz" 30 || die "airlock did not start (see ${A}/airlock.log)"
}

stop() {
  if pid_alive "$PIDF" airlock; then
    awk '/VmHWM/{print $2}' "/proc/$(cat "$PIDF")/status" >>"${A}/hwm.txt" || true
  fi
  stop_pidfile "$PIDF" airlock
}

case ${1:-run} in
  reset) stop; rm -rf "${A}/data"; start; exit 0 ;;
  stop) stop; exit 0 ;;
  run) ;;
  *) die "usage: $0 [run|reset|stop]" ;;
esac

# npm caches and projects on a tmpfs, as the shared run-all.sh does.
MOUNTED=0
if [[ ${NO_TMPFS:-0} != 1 ]] && ! mountpoint -q "${BENCH_ROOT}/tmpfs"; then
  mkdir -p "${BENCH_ROOT}/tmpfs"
  if mount -t tmpfs -o size=4g,mode=0755 tmpfs "${BENCH_ROOT}/tmpfs" 2>/dev/null; then MOUNTED=1; else log "no tmpfs (not root?); caches on disk"; fi
fi
mountpoint -q "${BENCH_ROOT}/tmpfs" && export SCRATCH_ROOT=${BENCH_ROOT}/tmpfs
mkdir -p "$A" "${BENCH_ROOT}/fixtures" "${BENCH_ROOT}/verdaccio"
[[ -d ${BENCH_ROOT}/fixtures/npm ]] || cp -r "${SHARED_BENCH}/fixtures/npm" "${BENCH_ROOT}/fixtures/"
[[ -s ${BENCH_ROOT}/verdaccio/package-lock.json ]] || cp "${SHARED_BENCH}/verdaccio/"package*.json "${BENCH_ROOT}/verdaccio/"
log "building airlock"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "${A}/airlock" ./cmd/airlock)
: >"${A}/hwm.txt"; : >"${A}/airlock.log"
SELF=$(readlink -f "$0")
trap 'stop >/dev/null 2>&1 || true; "${SHARED_BENCH}/npm-peer.sh" stop >/dev/null 2>&1 || true; [[ $MOUNTED == 1 ]] && umount "${BENCH_ROOT}/tmpfs"' EXIT

PHASES=${PHASES:-direct airlock verdaccio}
has() { [[ " $PHASES " == *" $1 "* ]]; }
has direct && LABEL=npm-1-direct RESET_CMD= "${SHARED_BENCH}/npm-bench.sh" "${UPSTREAM}/"
if has airlock; then
  start
  LABEL=npm-2-airlock RESET_CMD="'${SELF}' reset" "${SHARED_BENCH}/npm-bench.sh" "http://${AIRLOCK_ADDR}/npm/"
  stop
fi
if has verdaccio; then
  VERDACCIO_UPLINK="${UPSTREAM}/" "${SHARED_BENCH}/npm-peer.sh" reset
  LABEL=npm-3-verdaccio RESET_CMD="VERDACCIO_UPLINK='${UPSTREAM}/' '${SHARED_BENCH}/npm-peer.sh' reset" \
    "${SHARED_BENCH}/npm-bench.sh" "http://${VERDACCIO_ADDR:-127.0.0.1:4873}/"
  "${SHARED_BENCH}/npm-peer.sh" stop
fi

hwm=$(sort -n "${A}/hwm.txt" | tail -1)
{
  echo "airlock max VmHWM: $((${hwm:-0} / 1024)) MiB"
  for l in npm-1-direct npm-2-airlock npm-3-verdaccio; do
    d=${RESULTS_DIR}/npm-${l} # npm-bench.sh prefixes its label
    if [[ -s ${d}/summary.tsv ]]; then echo "== ${l}"; column -t "${d}/summary.tsv"; cat "${d}/checks.txt"; fi
  done
} | tee "${RESULTS_DIR}/npm-airlock.txt" >&2
