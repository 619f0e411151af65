#!/bin/bash
# bench/run.sh: `run --rm busybox true`, side by side in one hyperfine run:
# the berth CLI and the docker 28.2 CLI against berth, docker on dockerd,
# podman, and bare `crun run` on a bundle. All with --network none (until the
# bridge lands). Then 50 × `run -d busybox sleep 100`, 8 at a time; the idle
# daemon's PSS; the monitor's PSS per container; `ps -a` with 1000 containers.
# Section bridge: the default bridge vs --network none per engine.
#   RUNS (20), PAR_N (50), PAR_P (8), PAR_SETTLE (5 s before each burst), PS_N (1000),
#   SECTIONS ("run bridge parallel memory ps")
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-20}
PAR_N=${PAR_N:-50}
PAR_P=${PAR_P:-8}
PS_N=${PS_N:-1000}
SECTIONS=${SECTIONS:-run bridge parallel memory ps}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
start_berth
berth() { "$BIN/berth" "$@"; }
berth pull -q "$BB" >/dev/null
have docker && $DOCKER pull -q "$BB" >/dev/null 2>&1 || true
have podman && $PODMAN pull -q "$BB" >/dev/null 2>&1 || true

bundle=$RESULTS/bundle
mkdir -p "$bundle/rootfs"
cp -a /var/lib/berth-bench/images/busybox-bundle/rootfs/. "$bundle/rootfs/" 2>/dev/null || {
	mkdir -p "$bundle/rootfs/bin"; cp /bin/busybox "$bundle/rootfs/bin/"; ln -sf busybox "$bundle/rootfs/bin/true"; }
# crun 1.8 refuses newer ociVersions: take its own default spec when it is here.
spec=$BIN/berth-runtime
have crun && spec=crun
(cd "$bundle" && "$spec" spec && sed -i 's/"sh"/"true"/; s/"terminal": true/"terminal": false/' config.json)

for s in $SECTIONS; do case $s in
run)
	cmds=(-n "berth" "$BIN/berth run --rm --network none $BB true"
	      -n "docker-cli→berth" "env DOCKER_HOST=unix://$BERTH_SOCK $DOCKER_CLI run --rm --network none $BB true")
	have docker && $DOCKER info >/dev/null 2>&1 && cmds+=(-n "docker" "$DOCKER run --rm --network none $BB true")
	have podman && cmds+=(-n "podman" "$PODMAN run --rm --network none $BB true")
	have crun && cmds+=(-n "crun (bare)" "crun --root /run/berth-bench-crun run -b $bundle benchc")
	hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$RESULTS/run.json" "${cmds[@]}" >"$RESULTS/run.txt" 2>&1
	echo "== run --rm busybox true (median of $RUNS)"; ratios "$RESULTS/run.json"
	;;
bridge)
	# The cost of the default bridge network: run --rm busybox true on the
	# bridge vs --network none, per engine, all in one hyperfine run.
	cmds=(-n "berth bridge" "$BIN/berth run --rm $BB true" -n "berth none" "$BIN/berth run --rm --network none $BB true")
	# A peer whose bridge is broken here (e.g. dockerd without docker0) is left out, with a note.
	if have docker && $DOCKER info >/dev/null 2>&1; then
		if $DOCKER run --rm $BB true >/dev/null 2>&1; then
			cmds+=(-n "docker bridge" "$DOCKER run --rm $BB true" -n "docker none" "$DOCKER run --rm --network none $BB true")
		else echo "docker: run on its default bridge fails here; left out"; fi
	fi
	if have podman; then
		if $PODMAN run --rm $BB true >/dev/null 2>&1; then
			cmds+=(-n "podman bridge" "$PODMAN run --rm $BB true" -n "podman none" "$PODMAN run --rm --network none $BB true")
		else echo "podman: run on its default bridge fails here; left out"; fi
	fi
	hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$RESULTS/bridge.json" "${cmds[@]}" >"$RESULTS/bridge.txt" 2>&1
	echo "== run --rm busybox true: default bridge vs --network none (median of $RUNS)"; ratios "$RESULTS/bridge.json"
	python3 - "$RESULTS/bridge.json" <<'PY'
import json, sys
m = {x["command"]: x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(f"{'engine':<8} {'bridge cost ms':>15} {'bridge/none':>12}")
for e in ("berth", "docker", "podman"):
    if f"{e} bridge" in m:
        b, n = m[f"{e} bridge"], m[f"{e} none"]
        print(f"{e:<8} {(b-n)*1000:>15.1f} {b/n:>11.2f}x")
PY
	# hyperfine runs one command after the other, so load drifting on a busy
	# host skews the difference; alternate bridge and none and take the
	# median of the paired differences too.
	echo "paired (bridge, none alternated $RUNS times): median of the differences"
	for ((i = 0; i < ${#cmds[@]}; i += 6)); do # -n "E bridge" CMD -n "E none" CMD
		name=${cmds[i+1]% bridge}
		for ((r = 0; r < RUNS; r++)); do
			t0=$(date +%s%N); ${cmds[i+2]} >/dev/null 2>&1; t1=$(date +%s%N); ${cmds[i+5]} >/dev/null 2>&1; t2=$(date +%s%N)
			echo "$((t1 - t0)) $((t2 - t1))"
		done | python3 -c "
import sys, statistics as s
p = [tuple(map(int, l.split())) for l in sys.stdin]
print(f'{sys.argv[1]:<8} {s.median(a - b for a, b in p) / 1e6:>15.1f} ms bridge cost')" "$name"
	done
	;;
parallel)
	echo "== $PAR_N × run -d busybox sleep 100, $PAR_P at a time"
	par() { # ENGINE-CMD...
		local start end
		# one container first, as hyperfine's warmup does above: a freshly
		# started daemon (berth's here) otherwise pays its first page faults
		# in the timed burst, while dockerd and podman's storage are warm
		"$@" run --rm --network none "$BB" true >/dev/null 2>&1 || true
		# and the previous engine's teardown done: the kernel destroys
		# network namespaces (50 per engine here) in a worker after the
		# containers are gone, which would bill the next engine's burst
		sleep "${PAR_SETTLE:-5}"
		start=$(date +%s.%N)
		seq "$PAR_N" | xargs -P "$PAR_P" -I{} "$@" run -d --network none --label berth-bench=par "$BB" sleep 100 >/dev/null
		end=$(date +%s.%N)
		echo "$end - $start" | bc
	}
	printf '%-10s %8s s\n' berth "$(par "$BIN/berth")"
	berth ps -aq --filter label=berth-bench=par | xargs -r "$BIN/berth" rm -f >/dev/null
	if have docker && $DOCKER info >/dev/null 2>&1; then
		printf '%-10s %8s s\n' docker "$(par $DOCKER)"
		$DOCKER ps -aq --filter label=berth-bench=par | xargs -r $DOCKER rm -f >/dev/null 2>&1 || true
	fi
	if have podman; then
		printf '%-10s %8s s\n' podman "$(par $PODMAN)"
		# -t 0: sleep ignores SIGTERM as PID 1; a failed cleanup must not end the run.
		$PODMAN ps -aq --filter label=berth-bench=par | xargs -r $PODMAN rm -f -t 0 >/dev/null 2>&1 || true
	fi
	;;
memory)
	echo "== memory (PSS, kB)"
	sleep 2
	echo "idle berth daemon: $(pss "$BERTH_PID")"
	for i in $(seq 20); do berth run -d --network none --label berth-bench=mem "$BB" sleep 1000 >/dev/null; done
	mons=$(pgrep -x berth-monitor | tr '\n' ' ')
	n=$(echo $mons | wc -w)
	echo "berth-monitor: $n running, $(( $(pss $mons) / (n > 0 ? n : 1) )) kB PSS each"
	echo "berth daemon with 20 containers: $(pss "$BERTH_PID")"
	berth ps -aq --filter label=berth-bench=mem | xargs -r "$BIN/berth" rm -f >/dev/null
	;;
ps)
	echo "== ps -a with $PS_N containers"
	seq "$PS_N" | xargs -P 8 -I{} "$BIN/berth" create --network none --label berth-bench=ps "$BB" true >/dev/null
	hyperfine -N --warmup 2 --runs 10 --export-json "$RESULTS/ps.json" -n "berth ps -a" "$BIN/berth ps -a" \
		-n "docker-cli→berth ps -a" "env DOCKER_HOST=unix://$BERTH_SOCK $DOCKER_CLI ps -a" >"$RESULTS/ps.txt" 2>&1
	ratios "$RESULTS/ps.json"
	berth ps -aq --filter label=berth-bench=ps | xargs -r -n 100 "$BIN/berth" rm -f >/dev/null
	;;
esac; done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results: $RESULTS"
