#!/bin/bash
# bench/pull.sh: pull debian:bookworm (95 MB compressed, 3 layers) from the
# local registry, side by side in one hyperfine run:
#   berth          internal/image/cmd/pullbench: fresh store, download + verify + unpack into overlay snapshots
#   berth -nounpack the same, download + verify only (what skopeo does)
#   docker         dockerd 20.10 via /usr/bin/docker (after docker rmi)
#   podman         podman 4.3 (after podman rmi)
#   skopeo         skopeo copy to an OCI directory (download only, no unpack)
#   untar floor    no network, no digests: inflate + GNU tar -x of the same three
#                  layers into an empty directory (what the kernel's file
#                  creation costs on this disk; berth's unpack cannot beat it)
# Registry blobs sit in the page cache after the first run, so this measures
# engine-side cost (HTTP, sha256, gunzip, untar, metadata), not disk reads.
# Then peak RSS of one pull each (/usr/bin/time -v; docker's work happens in
# dockerd, so its client's RSS is not comparable and is not shown).
#   RUNS (5), REF (127.0.0.1:5000/debian:bookworm), SYNC=1 to make berth fsync
#   (blobs + one syncfs per layer), PROFILE=1 to write a CPU profile of one berth pull.
#   FRESH (1 by default): berth's and the floor's previous trees are renamed
#   aside instead of deleted right before each run (deleted after the runs).
#   The delete is the benchmark's own doing, not part of any pull, yet on ext4
#   without a journal (this machine's root) every inode deleted in the last
#   60 s (360 s while its inode table block is dirty) is skipped, with a buffer
#   lookup each, by every later inode allocation in its block group
#   (fs/ext4/ialloc.c recently_deleted): unpacking 6,700 files right after
#   deleting the previous 6,700 in the same place costs up to twice the CPU.
#   docker's and podman's own rmi deletes cannot be moved aside, so only berth
#   and the floor are spared it; skopeo writes 5 files and never pays it.
#   FRESH=0 deletes berth's tree right before each run too (a user's rmi
#   followed by a pull).
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REF=${REF:-127.0.0.1:5000/debian:bookworm}
RUNS=${RUNS:-5}
RESULTS=${RESULTS:-$REPO/bench/results/pull-$(date +%Y%m%d-%H%M%S)}
ROOT=/var/lib/berth-bench/pullbench
SKO=/var/lib/berth-bench/pullbench-skopeo
DOCKER=/usr/bin/docker
PODMAN=/usr/bin/podman
BIN=/tmp/berth-pullbench
mkdir -p "$RESULTS"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
[ "$(id -u)" = 0 ] || { log "run as root (overlay snapshots)"; exit 1; }
curl -sf "http://${REF%%/*}/v2/" >/dev/null || { log "registry ${REF%%/*} is not up (shared/peers/setup-peers.sh)"; exit 1; }

(cd "$REPO" && go build -o "$BIN" ./internal/image/cmd/pullbench)
SYNCFLAG=
[ "${SYNC:-0}" = 1 ] && SYNCFLAG=-sync
TRASH=/var/lib/berth-bench/pullbench-trash
wipe() { echo "rm -rf $1"; }
if [ "${FRESH:-1}" = 1 ]; then
	mkdir -p "$TRASH"
	wipe() { echo "if [ -e $1 ]; then mv $1 $TRASH/\$(date +%s%N); fi"; }
fi

cmds=(-n "berth" -p "$(wipe $ROOT)" "$BIN $SYNCFLAG -root $ROOT $REF"
      -n "berth -nounpack" -p "$(wipe $ROOT)" "$BIN -nounpack -root $ROOT $REF")
if [ -x $DOCKER ] && $DOCKER info >/dev/null 2>&1; then
	cmds+=(-n "docker" -p "$DOCKER rmi -f $REF >/dev/null 2>&1 || true" "$DOCKER pull -q $REF")
else log "dockerd not running: skipped"; fi
if [ -x $PODMAN ]; then
	cmds+=(-n "podman" -p "$PODMAN rmi -f $REF >/dev/null 2>&1 || true" "$PODMAN pull -q --tls-verify=false $REF")
fi
cmds+=(-n "skopeo" -p "rm -rf $SKO" "skopeo copy -q --src-tls-verify=false docker://$REF oci:$SKO:latest")
# The floor: the layers, in manifest order, from a local OCI copy.
FLOOR=/var/lib/berth-bench/pullbench-floor
rm -rf "$FLOOR.oci"; skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$FLOOR.oci:latest"
mf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]+"/index.json"))["manifests"][0]["digest"].split(":")[1])' "$FLOOR.oci")
layers=$(python3 -c 'import json,sys; print(" ".join(l["digest"].split(":")[1] for l in json.load(open(sys.argv[1]))["layers"]))' "$FLOOR.oci/blobs/sha256/$mf")
unz="gzip -d -c"; command -v igzip >/dev/null && unz="igzip -d -c"
untar="set -e; mkdir -p $FLOOR; for l in $layers; do $unz < $FLOOR.oci/blobs/sha256/\$l | tar -x -C $FLOOR; done"
cmds+=(-n "untar floor" -p "$(wipe $FLOOR)" "bash -c '$untar'")

log "loadavg before: $(cat /proc/loadavg) FRESH=${FRESH:-1}"
hyperfine --runs "$RUNS" --export-json "$RESULTS/pull.json" --export-markdown "$RESULTS/pull.md" "${cmds[@]}" >&2

python3 - "$RESULTS/pull.json" <<'EOF'
import json, statistics, sys
res = json.load(open(sys.argv[1]))["results"]
med = {r["command"]: statistics.median(r["times"]) for r in res}
base = med.get("skopeo")
# CPU (user+sys, mean over runs, the process and its waited-for children:
# igzip for berth) is steadier than wall time on a shared machine; docker's
# work happens in dockerd, so its client's CPU is not comparable.
cpu = {r["command"]: r["user"] + r["system"] for r in res}
print(f"{'pull ' + 'debian:bookworm':<24} {'median s':>9} {'x skopeo':>9} {'cpu s':>7}")
for name, m in med.items():
    ratio = f"{m / base:9.2f}" if base else ""
    c = "   (dockerd)" if name == "docker" else f"{cpu[name]:7.2f}"
    print(f"{name:<24} {m:9.3f} {ratio} {c}")
if "berth" in med and "docker" in med:
    print(f"docker / berth: {med['docker'] / med['berth']:.2f}x")
EOF

rss() { /usr/bin/time -f "%M" "$@" 2>&1 >/dev/null | tail -1; }
rm -rf "$ROOT"; b=$(rss "$BIN" $SYNCFLAG -root "$ROOT" "$REF")
rm -rf "$SKO"; s=$(rss skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$SKO:latest")
p=-; if [ -x $PODMAN ]; then $PODMAN rmi -f "$REF" >/dev/null 2>&1 || true; p=$(rss $PODMAN pull -q --tls-verify=false "$REF"); fi
printf 'peak RSS (kB): berth %s  skopeo %s  podman %s\n' "$b" "$s" "$p" | tee "$RESULTS/rss.txt"
if [ "${PROFILE:-0}" = 1 ]; then
	rm -rf "$ROOT"; "$BIN" $SYNCFLAG -cpuprofile "$RESULTS/berth-pull.pprof" -root "$ROOT" "$REF"
	go tool pprof -top -nodecount=25 "$BIN" "$RESULTS/berth-pull.pprof" 2>/dev/null | tee "$RESULTS/berth-pull-profile.txt"
fi
rm -rf "$ROOT" "$SKO" "$FLOOR" "$FLOOR.oci" "$TRASH"
log "loadavg after: $(cat /proc/loadavg); results in $RESULTS"
