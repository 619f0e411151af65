# bench/lib.sh: shared helpers for berth's side-by-side benchmarks. Sourced.
# Peers come from ../shared/peers (setup-peers.sh, make-images.sh).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN:-$REPO/bin}
REG=${REG:-127.0.0.1:5000}
BB=$REG/busybox:latest
DOCKER=/usr/bin/docker          # Debian's 20.10 client for dockerd
DOCKER_CLI=/usr/local/bin/docker # the 28.2 client, pointed at berth
PODMAN=/usr/bin/podman
RESULTS=${RESULTS:-$REPO/bench/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RESULTS"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

# start_berth: a daemon on its own roots (BROOT, BEXEC: two benchmarks can
# run side by side); sets BERTH_SOCK and BERTH_PID.
start_berth() {
	BROOT=${BROOT:-/var/lib/berth-bench/berth}
	BEXEC=${BEXEC:-/run/berth-bench-berth}
	mkdir -p "$BROOT"
	BERTH_SOCK=$BROOT/berth.sock
	"$BIN/berth" daemon --data-root "$BROOT/data" --exec-root "$BEXEC" \
		-H "unix://$BERTH_SOCK" --config-file /dev/null >"$RESULTS/berth-daemon.log" 2>&1 &
	BERTH_PID=$!
	for _ in $(seq 100); do
		[ -S "$BERTH_SOCK" ] && "$BIN/berth" -H "unix://$BERTH_SOCK" version >/dev/null 2>&1 && break
		sleep 0.1
	done
	trap stop_berth EXIT
	export BERTH_HOST=unix://$BERTH_SOCK
}

stop_berth() {
	[ -n "${BERTH_PID:-}" ] || return 0
	"$BIN/berth" ps -aq 2>/dev/null | xargs -r "$BIN/berth" rm -f >/dev/null 2>&1 || true
	kill "$BERTH_PID" 2>/dev/null || true
	wait "$BERTH_PID" 2>/dev/null || true
	BERTH_PID=
}

# ratios JSON: print each command's median and its ratio to the first one.
ratios() {
	python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
base = r[0]["median"]
print(f"{'command':<28} {'median ms':>10} {'vs ' + r[0]['command']:>16}")
for x in r:
    print(f"{x['command']:<28} {x['median']*1000:>10.1f} {x['median']/base:>15.2f}x")
PY
}

# pss PID...: total PSS in kB of the given processes.
pss() {
	local t=0 p v
	for p in "$@"; do
		v=$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}
