#!/usr/bin/env bash
# bench/runtime.sh: `run` of a busybox bundle running `true`, berth-runtime
# vs crun vs runc, with and without a network namespace, in one hyperfine
# run; prints medians, ratios to crun, and the peak RSS of each runtime.
#
# env: RUNS (30), WARMUP (3), BERTH_RUNTIME (binary to test; default: the
# Makefile's bin/berth-runtime, built here, as shipped: musl when there), OUT (results dir, default a temp dir),
# BERTH_EXE_PROTECT=memfd to measure the sealed-copy protection instead of
# the read-only clone, GO_INIT=1 to add a row with the Go container init
# (BERTH_INIT=go; that row also pays for an `env` exec, ~1 ms), MONITOR_ENV=1
# to add a row with GOMAXPROCS=1, as berth-monitor runs the runtime (also
# through `env`).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for t in hyperfine crun runc jq; do command -v $t >/dev/null || { echo "needs $t" >&2; exit 1; }; done

cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
OUT=${OUT:-$(mktemp -d /tmp/berth-bench-runtime.XXXXXX)}
mkdir -p "$OUT"
BIN=${BERTH_RUNTIME:-}
if [ -z "$BIN" ]; then
    make build >/dev/null
    BIN=$OUT/berth-runtime
    cp bin/berth-runtime "$BIN"
fi

IMAGES=/var/lib/berth-bench/images
ROOTFS=$OUT/rootfs
if [ -d "$IMAGES/busybox-bundle/rootfs" ]; then
    cp -a "$IMAGES/busybox-bundle/rootfs" "$ROOTFS"
else
    mkdir -p "$ROOTFS/bin"
    cp "$(command -v busybox)" "$ROOTFS/bin/busybox"
    for a in sh true; do ln -s busybox "$ROOTFS/bin/$a"; done
fi

# bundles as peer-bench.sh makes them: `runc spec` (pid, net, ipc, uts, mnt;
# read-only root), no terminal, args ["true"]
make_bundle() {
    local b=$1
    mkdir -p "$b"; rm -rf "$b/rootfs"; cp -a "$ROOTFS" "$b/rootfs"   # runc refuses a symlinked rootfs
    (cd "$b" && rm -f config.json && runc spec)
    local filter='.process.terminal=false | .process.args=["true"]'
    [ "$2" = no-net ] && filter="$filter | .linux.namespaces |= map(select(.type != \"network\"))"
    jq "$filter" "$b/config.json" >"$b/config.json.new" && mv "$b/config.json.new" "$b/config.json"
}
make_bundle "$OUT/bb-net" net
make_bundle "$OUT/bb-nonet" no-net
for rt in "$BIN" crun runc; do $rt delete -f bench-rt >/dev/null 2>&1 || true; done

extra=()
[ "${GO_INIT:-}" = 1 ] && extra=(-n 'berth-runtime Go init (netns)' "env BERTH_INIT=go $BIN run --bundle $OUT/bb-net bench-rt")
[ "${MONITOR_ENV:-}" = 1 ] && extra+=(-n 'berth-runtime GOMAXPROCS=1 (netns)' "env GOMAXPROCS=1 $BIN run --bundle $OUT/bb-net bench-rt")
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$OUT/runtime.json" "${extra[@]}" \
    -n 'berth-runtime (netns)'    "$BIN run --bundle $OUT/bb-net bench-rt" \
    -n 'crun (netns)'             "crun run --bundle $OUT/bb-net bench-rt" \
    -n 'runc (netns)'             "runc run --bundle $OUT/bb-net bench-rt" \
    -n 'berth-runtime (no netns)' "$BIN run --bundle $OUT/bb-nonet bench-rt" \
    -n 'crun (no netns)'          "crun run --bundle $OUT/bb-nonet bench-rt" \
    -n 'runc (no netns)'          "runc run --bundle $OUT/bb-nonet bench-rt" \
    -n 'unshare (floor)'          "unshare --fork --pid --mount --uts --ipc --net true" >"$OUT/hyperfine.txt"

echo "# berth-runtime vs crun vs runc: run of busybox true (median wall ms, ratio to crun; mean CPU ms user+sys)"
jq -r '
  (.results | map({key: .command, value: (.median * 1000)}) | from_entries) as $m
  | .results[]
  | .command as $c
  | ($c | if test("netns\\)") then (if test("no netns") then "crun (no netns)" else "crun (netns)" end) else "crun (netns)" end) as $ref
  | "\($c)\t\(.median * 1000 | . * 10 | round / 10) ms\tx\(($m[$c] / $m[$ref]) * 100 | round / 100) vs crun\tcpu \((.user + .system) * 1000 | round) ms"
' "$OUT/runtime.json" | column -t -s $'\t'

echo
echo "# peak RSS (max resident set size, kB) of one run (no netns)"
for rt in "$BIN" crun runc; do
    rss=$( { /usr/bin/time -v $rt run --bundle "$OUT/bb-nonet" bench-rt >/dev/null; } 2>&1 | awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}')
    printf '%-16s %s\n' "$(basename "$rt")" "$rss"
done
echo
echo "binary: $BIN ($(stat -c %s "$BIN") bytes); raw results in $OUT"
