#!/usr/bin/env bash
# bench/oci.sh — Airlock's registry front beside the upstream, distribution's
# pull-through proxy and nginx (the limit), in one pass, with the shared harness
# (../shared/bench, or SHARED_BENCH).
#
# The harness's upstream (distribution on 127.0.0.1:5001) is seeded with signed and
# unsigned images (bench/small, bench/large 1x256 MiB, bench/many 20x4 MiB,
# bench/multi index, bench/mutable). Airlock pulls from it as its mirror upstream,
# so the harness's unprefixed names work unchanged, and requires the harness's
# cosign key for every repository but bench/many (unsigned by design).
# oci-bench.sh then measures each endpoint: cold/warm pulls (crane), a 256 MiB
# blob to 8 concurrent clients (hey, MB/s), manifests by digest and by tag (req/s,
# p99), cosign verify through the endpoint, and the tag re-point check.
# After it, one blob is asked by 16 concurrent cold requests (Airlock must fetch
# it upstream once), optionally four 1 GiB blobs are streamed at once ("huge"),
# and Airlock's RSS is sampled throughout.
#
# Usage: bench/oci.sh        (root: page-cache drops; results in $RESULTS_DIR)
# Env:   TARGETS ("upstream airlock distribution nginx"; add "huge" for four 1 GiB
#        blobs streamed at once, 8 GiB of disk), RUNS_PULL, RUNS_HEY,
#        AIRLOCK_ADDR (127.0.0.1:5010), BENCH_ROOT (/tmp/airlock-bench), SHARED_BENCH,
#        UPSTREAM_RATE (e.g. 1gbit: what the upstream sends is shaped to that rate with
#        tc htb on lo, as a registry across a network link would be, so that the cold
#        pulls compare the endpoints where the link and not this machine's CPU is the
#        limit; the blob and manifest rates of the "upstream" target are then the
#        link's, not comparable with an unshaped pass).
#   bench/oci.sh reset | stop    (used internally as RESET_CMD)
set -euo pipefail
REPO=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$(cd "${REPO}/../shared/bench" 2>/dev/null && pwd || true)}
[[ -n $SHARED_BENCH && -x ${SHARED_BENCH}/oci-bench.sh ]] || { echo "shared bench harness not found; set SHARED_BENCH" >&2; exit 1; }
export BENCH_ROOT=${BENCH_ROOT:-/tmp/airlock-bench}
source "${SHARED_BENCH}/lib.sh"

AIRLOCK_ADDR=${AIRLOCK_ADDR:-127.0.0.1:5010}
UP=http://127.0.0.1:5001
A=${BENCH_ROOT}/airlock-oci
PIDF=${RUN_DIR}/airlock-oci.pid
HWM=${A}/hwm.txt

start() {
  mkdir -p "${A}/data"
  cat >"${A}/airlock.yaml" <<EOF
listen: ${AIRLOCK_ADDR}
data: ${A}/data
log: {format: json, level: warn}
oci:
  upstreams: [{name: up, url: "${UP}", mirror: true}]
  tag_ttl: 1m
  policies:
    - {match: up/bench/many, require: none}
    - {match: "up/bench/huge*", require: none}
    - match: "up/**"
      require: signature
      keys: ["${BENCH_ROOT}/oci/keys/cosign.pub"]
      ignore_tlog: true
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

TARGETS=${TARGETS:-upstream airlock distribution nginx}
has() { [[ " $TARGETS " == *" $1 "* ]]; }
mkdir -p "$A"
log "building airlock"
(cd "$REPO" && CGO_ENABLED=0 go build -trimpath -o "${A}/airlock" ./cmd/airlock)
: >"$HWM"; : >"${A}/airlock.log"; : >"${A}/rss.tsv"
SELF=$(readlink -f "$0")
STARTED=()
SHAPED=
cleanup() {
  [[ -n $SHAPED ]] && tc qdisc del dev lo root 2>/dev/null
  stop >/dev/null 2>&1 || true
  kill "${SAMPLER:-0}" 2>/dev/null || true
  local s
  for s in "${STARTED[@]}"; do "${SHARED_BENCH}/${s}" stop >/dev/null 2>&1 || true; done
}
trap cleanup EXIT
start_server() { # SCRIPT ACTION: start a harness server, stop it at exit if we started it
  local s=$1; shift
  "${SHARED_BENCH}/${s}" status >/dev/null 2>&1 || STARTED+=("$s")
  "${SHARED_BENCH}/${s}" "$@"
}

( while sleep 0.2; do
    [[ -s $PIDF ]] || continue
    awk -v t="$(date +%s.%N)" '/VmRSS/{print t "\t" $2}' "/proc/$(cat "$PIDF")/status" 2>/dev/null >>"${A}/rss.tsv" || true
  done ) &
SAMPLER=$!

start_server oci-setup.sh all
if [[ -n ${UPSTREAM_RATE:-} ]]; then
  # Only packets from the upstream's port: clients reach the endpoints at loopback speed.
  tc qdisc show dev lo | grep -q '^qdisc noqueue' || die "lo already has a qdisc; not touching it"
  tc qdisc add dev lo root handle 1: htb default 10 r2q 1000 2>/dev/null
  SHAPED=1
  tc class add dev lo parent 1: classid 1:10 htb rate 100gbit 2>/dev/null
  tc class add dev lo parent 1: classid 1:20 htb rate "$UPSTREAM_RATE" ceil "$UPSTREAM_RATE" burst 256k cburst 256k 2>/dev/null
  tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip sport "${UP##*:}" 0xffff flowid 1:20
  log "upstream shaped to ${UPSTREAM_RATE}"
fi
has upstream && LABEL=oci-1-upstream RESET_CMD= "${SHARED_BENCH}/oci-bench.sh" "$UP"
if has airlock; then
  start
  LABEL=oci-2-airlock RESET_CMD="'${SELF}' reset" "${SHARED_BENCH}/oci-bench.sh" "http://${AIRLOCK_ADDR}" "$UP"
fi
if has distribution; then
  start_server oci-peer.sh reset
  LABEL=oci-3-distribution RESET_CMD="${SHARED_BENCH}/oci-peer.sh reset" "${SHARED_BENCH}/oci-bench.sh" http://127.0.0.1:5002 "$UP"
fi
if has nginx; then
  start_server oci-nginx.sh start
  LABEL=oci-4-nginx RESET_CMD= SIG_CHECK=0 REPOINT_CHECK=0 "${SHARED_BENCH}/oci-bench.sh" http://127.0.0.1:5003 "$UP"
fi

# 16 concurrent cold requests for the 256 MiB layer: one upstream fetch.
if has airlock; then
  "$SELF" reset
  large=$(awk -F'\t' '$1=="bench/large:v1"{print $2}' "${BENCH_ROOT}/oci/seed.tsv")
  layer=$(crane manifest --insecure "127.0.0.1:5001/bench/large@${large}" | jq -r '.layers[0].digest')
  size=$(crane manifest --insecure "127.0.0.1:5001/bench/large@${large}" | jq -r '.layers[0].size')
  curl -sf -o /dev/null "http://${AIRLOCK_ADDR}/v2/bench/large/manifests/${large}"
  upbytes() { curl -s "http://${AIRLOCK_ADDR}/metrics" | awk '/^airlock_upstream_bytes_total\{ecosystem="oci"\}/{printf "%.0f", $2}'; }
  b0=$(upbytes); b0=${b0:-0}
  pids=(); t0=$(now_s)
  for _ in $(seq 1 16); do
    curl -sf -o /dev/null "http://${AIRLOCK_ADDR}/v2/bench/large/blobs/${layer}" & pids+=($!)
  done
  ok=0; for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done
  s=$(elapsed "$t0"); b1=$(upbytes)
  echo "16 concurrent cold requests for one ${size}-byte blob: ${ok} complete in ${s}s; upstream bytes read $((b1 - b0)) = $(awk -v b=$((b1 - b0)) -v z="$size" 'BEGIN{printf "%.2f", b/z}') fetches" \
    | tee "${RESULTS_DIR}/oci-airlock-fanin.txt" >&2
fi
# Four 1 GiB blobs streamed at once through a cold Airlock: RSS must stay flat
# (bytes go upstream -> staged file -> clients, never whole into memory).
if has huge; then
  "$SELF" reset
  H=${BENCH_ROOT}/oci/huge; mkdir -p "$H"
  upload() { # REPO FILE DIGEST: monolithic upload to the distribution upstream
    local loc
    loc=$(curl -sf -D - -o /dev/null -X POST "${UP}/v2/$1/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
    [[ $loc == http* ]] || loc=${UP}${loc}
    curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --upload-file "$2" "${loc}$([[ $loc == *\?* ]] && echo '&' || echo '?')digest=$3"
  }
  printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}' >"${H}/config.json"
  cfgd=sha256:$(sha256sum "${H}/config.json" | cut -d' ' -f1); cfgs=$(stat -c %s "${H}/config.json")
  digests=()
  for i in 1 2 3 4; do
    f=${H}/layer${i}
    head -c $((1 << 30)) /dev/urandom >"$f"
    d=sha256:$(sha256sum "$f" | cut -d' ' -f1)
    upload "bench/huge${i}" "$f" "$d"; upload "bench/huge${i}" "${H}/config.json" "$cfgd"
    rm -f "$f" # disk: the upstream and Airlock each keep a copy
    m=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%s}]}' "$cfgd" "$cfgs" "$d" $((1 << 30)))
    curl -sf -o /dev/null -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary "$m" "${UP}/v2/bench/huge${i}/manifests/v1"
    curl -sf -o /dev/null "http://${AIRLOCK_ADDR}/v2/bench/huge${i}/manifests/v1"
    digests+=("$d")
  done
  r0=$(wc -l <"${A}/rss.tsv"); pids=(); t0=$(now_s)
  for i in 1 2 3 4; do
    curl -sf -o /dev/null "http://${AIRLOCK_ADDR}/v2/bench/huge${i}/blobs/${digests[$((i - 1))]}" & pids+=($!)
  done
  ok=0; for p in "${pids[@]}"; do wait "$p" && ok=$((ok + 1)); done
  s=$(elapsed "$t0")
  hpeak=$(tail -n +"$((r0 + 1))" "${A}/rss.tsv" | awk -F'\t' '$2>m{m=$2} END{print m+0}')
  echo "4 concurrent cold 1 GiB blobs: ${ok}/4 complete in ${s}s; airlock peak RSS meanwhile $((hpeak / 1024)) MiB" \
    | tee "${RESULTS_DIR}/oci-airlock-huge.txt" >&2
  for i in 1 2 3 4; do curl -s -o /dev/null -X DELETE "${UP}/v2/bench/huge${i}/blobs/${digests[$((i - 1))]}"; done
  stop; rm -rf "${A}/data"
fi
stop

peak=$(awk -F'\t' '$2>m{m=$2} END{print m+0}' "${A}/rss.tsv")
hwm=$(sort -n "$HWM" | tail -1)
{
  echo "airlock peak RSS sampled: $((peak / 1024)) MiB; max VmHWM: $((${hwm:-0} / 1024)) MiB"
  for l in oci-1-upstream oci-2-airlock oci-3-distribution oci-4-nginx; do
    d=${RESULTS_DIR}/oci-${l} # oci-bench.sh prefixes its label
    [[ -s ${d}/summary.tsv ]] || continue
    echo "== ${l}"; column -t "${d}/summary.tsv"; cat "${d}/checks.txt"
  done
} | tee "${RESULTS_DIR}/oci-airlock.txt" >&2
