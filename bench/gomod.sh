#!/usr/bin/env bash
# bench/gomod.sh — Airlock's Go module proxy beside the upstream it fronts, in one pass.
#
# Uses the shared peer harness (../shared/bench, or SHARED_BENCH) and its fixture: a
# module requiring github.com/sigstore/cosign/v2 v2.6.5 (`go mod download all`: ~650
# modules, ~420 MB of zips). Phases, all in one run so the ratios are fair:
#   1. direct   gomod-bench.sh against the upstream GOPROXY
#   2. airlock  gomod-bench.sh against Airlock: cold (data wiped and Airlock restarted
#               before each run, so every zip is fetched and verified against the
#               checksum database) then warm
#   3. load     LOAD_CLIENTS (8) concurrent `go mod download all`, each with its own
#               GOMODCACHE, against warm Airlock (and, with load-direct, the upstream)
# Airlock's RSS is sampled every 200 ms throughout (peak reported), and VmHWM is read
# before each stop.
#
# Usage: bench/gomod.sh            (results in $RESULTS_DIR, summary on stderr)
# Env:   RUNS (3), MODES ("all build"), LOAD_CLIENTS (8), AIRLOCK_ADDR (127.0.0.1:5010),
#        READ_AHEAD (8, Airlock's go.read_ahead), NO_TMPFS=1 (caches on disk),
#        PHASES ("direct airlock load"; add load-direct for 8 clients at the upstream),
#        UPSTREAM (first entry of `go env GOPROXY`), BENCH_ROOT (/tmp/airlock-bench),
#        SHARED_BENCH.
#   bench/gomod.sh reset | stop    (used internally as RESET_CMD)
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$(cd "${REPO}/../shared/bench" 2>/dev/null && pwd || true)}
[[ -n $SHARED_BENCH && -x ${SHARED_BENCH}/gomod-bench.sh ]] || { echo "shared bench harness not found; set SHARED_BENCH" >&2; exit 1; }
export BENCH_ROOT=${BENCH_ROOT:-/tmp/airlock-bench}
source "${SHARED_BENCH}/lib.sh"

AIRLOCK_ADDR=${AIRLOCK_ADDR:-127.0.0.1:5010}
UPSTREAM=${UPSTREAM:-$(go env GOPROXY | cut -d, -f1)}
A=${BENCH_ROOT}/airlock
PIDF=${RUN_DIR}/airlock.pid
HWM=${A}/hwm.txt

start() {
  mkdir -p "${A}/data"
  cat >"${A}/airlock.yaml" <<EOF
listen: ${AIRLOCK_ADDR}
data: ${A}/data
log: {format: json, level: warn}
go:
  upstream: ${UPSTREAM}
  read_ahead: ${READ_AHEAD:-8}
EOF
  port_free "$AIRLOCK_ADDR"
  "${A}/airlock" serve --config "${A}/airlock.yaml" >>"${A}/airlock.log" 2>&1 &
  echo $! >"$PIDF"
  wait_http "http://${AIRLOCK_ADDR}/readyz" 30 || die "airlock did not start (see ${A}/airlock.log)"
}

stop() {
  if pid_alive "$PIDF" airlock; then
    awk '/VmHWM/{print $2}' "/proc/$(cat "$PIDF")/status" >>"$HWM" || true
  fi
  stop_pidfile "$PIDF" airlock
}

case ${1:-run} in
  reset) stop; rm -rf "${A}/data"; start; exit 0 ;;
  stop) stop; exit 0 ;;
  run) ;;
  *) die "usage: $0 [run|reset|stop]" ;;
esac

# Per-run module caches on a tmpfs (as the shared harness's run-all.sh does), so
# the client's disk writes do not hide the proxy's cost.
MOUNTED=0
if [[ ${NO_TMPFS:-0} != 1 ]] && ! mountpoint -q "${BENCH_ROOT}/tmpfs"; then
  mkdir -p "${BENCH_ROOT}/tmpfs"
  if mount -t tmpfs -o size=12g,mode=0755 tmpfs "${BENCH_ROOT}/tmpfs" 2>/dev/null; then MOUNTED=1; else log "no tmpfs (not root?); caches on disk"; fi
fi
mountpoint -q "${BENCH_ROOT}/tmpfs" && export SCRATCH_ROOT=${BENCH_ROOT}/tmpfs
mkdir -p "$A" "${BENCH_ROOT}/fixtures"
[[ -d ${BENCH_ROOT}/fixtures/gomod ]] || cp -r "${SHARED_BENCH}/fixtures/gomod" "${BENCH_ROOT}/fixtures/"
log "building airlock"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "${A}/airlock" ./cmd/airlock)
: >"$HWM"; : >"${A}/airlock.log"
SELF=$(readlink -f "$0")
trap 'stop >/dev/null 2>&1 || true; kill "${SAMPLER:-0}" 2>/dev/null || true; [[ $MOUNTED == 1 ]] && umount "${BENCH_ROOT}/tmpfs"' EXIT

# RSS sampler: follows whichever airlock the pid file names (reset restarts it).
: >"${A}/rss.tsv"
( while sleep 0.2; do
    [[ -s $PIDF ]] || continue
    awk -v t="$(date +%s.%N)" '/VmRSS/{print t "\t" $2}' "/proc/$(cat "$PIDF")/status" 2>/dev/null >>"${A}/rss.tsv" || true
  done ) &
SAMPLER=$!

PHASES=${PHASES:-direct airlock load}
has() { [[ " $PHASES " == *" $1 "* ]]; }
ALABEL=go-2-airlock-ra${READ_AHEAD:-8}
has direct && LABEL=go-1-direct RESET_CMD= "${SHARED_BENCH}/gomod-bench.sh" "$UPSTREAM"
start
has airlock && LABEL=$ALABEL RESET_CMD="'${SELF}' reset" "${SHARED_BENCH}/gomod-bench.sh" "http://${AIRLOCK_ADDR}/go"

# Load: the last gomod-bench run left Airlock warm.
load_run() { # LABEL PROXY
  local label=$1 proxy=$2 i t0 s fails=0 w
  w=$(mktemp -d "${SCRATCH_ROOT}/gomod-load.XXXXXX")
  for i in $(seq 1 "${LOAD_CLIENTS:-8}"); do
    mkdir -p "${w}/m${i}"; cp "${BENCH_ROOT}/fixtures/gomod/"{go.mod,go.sum,main.go} "${w}/m${i}/"
  done
  local pids=()
  t0=$(now_s)
  for i in $(seq 1 "${LOAD_CLIENTS:-8}"); do
    (cd "${w}/m${i}" && GOPROXY="$proxy" GOMODCACHE="${w}/c${i}" GOFLAGS="-mod=mod -modcacherw" GOTOOLCHAIN=local \
      timeout 900 go mod download -json all >"${w}/out${i}.json" 2>"${w}/err${i}.txt") &
    pids+=($!)
  done
  wait "${pids[@]}" || true # not a bare wait: the RSS sampler never ends
  s=$(elapsed "$t0")
  local oks=0
  for i in $(seq 1 "${LOAD_CLIENTS:-8}"); do
    fails=$((fails + $(jq -s '[.[] | select(.Error != null)] | length' "${w}/out${i}.json")))
    oks=$((oks + $(jq -s '[.[] | select(.Error == null)] | length' "${w}/out${i}.json")))
  done
  log "load ${label}: ${LOAD_CLIENTS:-8} clients in ${s}s, ${oks} modules downloaded, ${fails} module errors in all"
  printf 'load_%s_s\t%s\tok=%s\terrors=%s\n' "$label" "$s" "$oks" "$fails" >>"${RESULTS_DIR}/gomod-load.tsv"
  chmod -R u+w "$w"; rm -rf "$w"
}
: >"${RESULTS_DIR}/gomod-load.tsv"
has load && load_run airlock_warm "http://${AIRLOCK_ADDR}/go"
# Eight clients straight at the upstream move 8x the bytes over the network:
# slow where the upstream is a distant mirror, so opt-in.
has load-direct && load_run direct "$UPSTREAM"
stop

peak=$(awk -F'\t' '$2>m{m=$2} END{print m+0}' "${A}/rss.tsv")
hwm=$(sort -n "$HWM" | tail -1)
{
  echo "airlock peak RSS sampled: $((peak / 1024)) MiB; max VmHWM over all runs: $((${hwm:-0} / 1024)) MiB"
  echo "load (label, seconds, module errors):"; cat "${RESULTS_DIR}/gomod-load.tsv"
  for l in go-1-direct "$ALABEL"; do
    if [[ -s ${RESULTS_DIR}/gomod-${l}/summary.tsv ]]; then echo "== ${l}"; column -t "${RESULTS_DIR}/gomod-${l}/summary.tsv"; fi
  done
} | tee "${RESULTS_DIR}/gomod-airlock.txt" >&2
