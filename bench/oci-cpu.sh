#!/usr/bin/env bash
# bench/oci-cpu.sh — where a cold pull's time goes: the 256 MiB image pulled with
# crane straight from the harness's upstream and through a cold Airlock, runs
# alternating, each with the page cache dropped first. Per run it prints the wall
# time, the CPU-seconds the whole machine was busy meanwhile (/proc/stat: user,
# nice, system, irq, softirq) and Airlock's own CPU-seconds (/proc/<pid>/stat).
# On a machine whose cores the pull keeps busy, wall time follows the busy CPU:
# that is what bounds the cold ratio here (docs/PERFORMANCE.md).
#
# Usage: bench/oci-cpu.sh [RUNS]   (root: page-cache drops; default 5 runs)
# Env:   as bench/oci.sh (BENCH_ROOT, SHARED_BENCH, AIRLOCK_ADDR, UPSTREAM_RATE is not
#        applied here).
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$(cd "${REPO}/../shared/bench" 2>/dev/null && pwd || true)}
[[ -n $SHARED_BENCH && -x ${SHARED_BENCH}/oci-setup.sh ]] || { echo "shared bench harness not found; set SHARED_BENCH" >&2; exit 1; }
export BENCH_ROOT=${BENCH_ROOT:-/tmp/airlock-bench}
source "${SHARED_BENCH}/lib.sh"
RUNS=${1:-5}
AIRLOCK_ADDR=${AIRLOCK_ADDR:-127.0.0.1:5010}
A=${BENCH_ROOT}/airlock-oci
PIDF=${RUN_DIR}/airlock-oci.pid

mkdir -p "$A"
log "building airlock"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "${A}/airlock" ./cmd/airlock)
started=
"${SHARED_BENCH}/oci-setup.sh" status >/dev/null 2>&1 || started=1
"${SHARED_BENCH}/oci-setup.sh" all
trap '"${REPO}/bench/oci.sh" stop >/dev/null 2>&1 || true; [[ -n $started ]] && "${SHARED_BENCH}/oci-setup.sh" stop >/dev/null 2>&1 || true' EXIT

busy() { awk '/^cpu /{printf "%.2f", ($2+$3+$4+$7+$8)/100}' /proc/stat; }
proc_cpu() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"; }
# pull REF: prints "wall busy" for a crane pull of REF to /dev/null.
pull() {
  local b0 t0 s b1
  b0=$(busy); t0=$(now_s)
  crane pull --insecure "$1" /dev/null
  s=$(elapsed "$t0"); b1=$(busy)
  echo "$s $(awk -v a="$b0" -v b="$b1" 'BEGIN{printf "%.2f", b-a}')"
}

printf '%s\t%s\t%s\t%s\t%s\t%s\n' run direct_s direct_busy_cpu_s airlock_s airlock_busy_cpu_s airlock_own_cpu_s
for i in $(seq 1 "$RUNS"); do
  drop_caches
  read -r dw db < <(pull 127.0.0.1:5001/bench/large:v1)
  "${REPO}/bench/oci.sh" reset >/dev/null
  drop_caches
  pid=$(cat "$PIDF"); c0=$(proc_cpu "$pid")
  read -r aw ab < <(pull "${AIRLOCK_ADDR}/bench/large:v1")
  c1=$(proc_cpu "$pid")
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$i" "$dw" "$db" "$aw" "$ab" "$(awk -v a="$c0" -v b="$c1" 'BEGIN{printf "%.2f", b-a}')"
done
