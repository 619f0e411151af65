#!/bin/sh
# Network benchmarks of internal/network (root), berth next to docker and
# podman.
#  1. Bridge set-up cost per container (Go benchmarks, in a throwaway "host"
#     namespace so the real host's firewall is not involved):
#       ConnectDisconnect/*: Connect + Release (veth pair into a fresh netns,
#         addresses, routes; +port: host port reservation and one nftables
#         batch each way; +dns: the embedded DNS sockets), with the store
#         synced as the daemon's is (one bbolt commit per Connect).
#       ConnectNoSync: the same with the store unsynced: the network work.
#     Goal (issue 5): ≤ 5 ms; docker's bridge costs ~150 ms, podman's ~315 ms
#     here (run --rm with and without --network none, peers/README.md).
#  2. Throughput host → container through a published port, one Go sender,
#     one receiver (this package's test binary, TestSinkServer, bind-mounted
#     into the peers' busybox containers): MB/s and machine-wide CPU s/GB.
#  3. 200 real containers on one user network, each reaching the next by
#     name (ping through the embedded DNS), per engine (ENGINES200, default
#     "berth docker podman"; N200, P200 at a time): seconds until every
#     `run -d` returned, and until every container had reached its peer.
#     Where another table's forward policy drop would drop bridged IPv4
#     (dockerd's, docs/networking.md) the network is IPv6 and the pings
#     ping -6, for every engine alike.
#  4. Bridge cost through each engine's CLI: run --rm busybox true on the
#     default bridge and on a user network, each minus --network none,
#     alternated RUNSBR times (median of the paired differences);
#     ENGINESBR. bench/run.sh's bridge section does the same with hyperfine
#     for the default bridges only.
set -eu
cd "$(dirname "$0")/.."
# SECTIONS: which parts run (default all): setup 200ns throughput 200 bridge
SECTIONS=" ${SECTIONS:-setup 200ns throughput 200 bridge} "
want() { case $SECTIONS in *" $1 "*) return 0 ;; esac; return 1; }
N=${N:-100}
BT=${BENCHTIME:-3s}
BIN=$(mktemp -d)/network.test
BERTH_PID=
cleanup() {
	if [ -n "$BERTH_PID" ]; then
		"$BERTH_BIN" -H "unix://$BROOT/berth.sock" ps -aq 2>/dev/null | xargs -r "$BERTH_BIN" -H "unix://$BROOT/berth.sock" rm -f >/dev/null 2>&1 || true
		"$BERTH_BIN" -H "unix://$BROOT/berth.sock" network rm bench200 benchbr >/dev/null 2>&1 || true
		kill "$BERTH_PID" 2>/dev/null || true
		wait "$BERTH_PID" 2>/dev/null || true
		rm -rf "$BROOT"
	fi
	for e in /usr/bin/docker podman; do
		$e ps -aq --filter label=berth-bench=net200 2>/dev/null | xargs -r $e rm -f >/dev/null 2>&1 || true
		$e network rm bench200 benchbr >/dev/null 2>&1 || true
	done
	/usr/bin/docker rm -f berth-netbench >/dev/null 2>&1 || true
	/usr/bin/docker network rm berth-netbench >/dev/null 2>&1 || true
	podman rm -f berth-netbench >/dev/null 2>&1 || true
	rm -rf "$(dirname "$BIN")"
}
trap cleanup EXIT
if want setup || want 200ns || want throughput; then
	CGO_ENABLED=0 go test -c -o "$BIN" ./internal/network
fi

if want setup; then
	echo "== bridge set-up cost (berth)"
	"$BIN" -test.run XXX -test.bench 'ConnectDisconnect|ConnectNoSync' -test.benchtime "${N}x" | grep ms/op
fi
if want 200ns; then
	echo "== 200 containers on one user network, each reaching the next by name (berth, network manager in namespaces)"
	"$BIN" -test.run XXX -test.bench 'UserNetwork200' -test.benchtime 1x | grep connect
fi
if want throughput; then
echo "== published port throughput: berth"
"$BIN" -test.run XXX -test.bench 'PublishedPortThroughput' -test.benchtime "$BT" | grep MB/s

HOSTIP=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
TARGETS=""
if [ -x /usr/bin/docker ] && /usr/bin/docker info >/dev/null 2>&1; then
	# a user network of its own: docker0 may be missing (a dockerd started
	# with --bridge none removes it)
	/usr/bin/docker network create berth-netbench >/dev/null 2>&1 || true
	if /usr/bin/docker run -d --rm --name berth-netbench --network berth-netbench -v "$BIN:/sink:ro" -e BERTH_SINK=:5001 \
		-p 15101:5001 127.0.0.1:5000/busybox:latest /sink -test.run '^TestSinkServer$' >/dev/null; then
		TARGETS="docker-loopback(docker-proxy)=127.0.0.1:15101,docker-hostaddr=$HOSTIP:15101"
	else
		echo "docker: cannot run a container with a published port; skipped" >&2
	fi
fi
if command -v podman >/dev/null 2>&1; then
	if podman run -d --rm --name berth-netbench -v "$BIN:/sink:ro" -e BERTH_SINK=:5001 \
		-p 15201:5001 127.0.0.1:5000/busybox:latest /sink -test.run '^TestSinkServer$' >/dev/null; then
		TARGETS="${TARGETS:+$TARGETS,}podman-loopback=127.0.0.1:15201,podman-hostaddr=$HOSTIP:15201"
	else
		echo "podman: cannot run a container with a published port; skipped" >&2
	fi
fi
if [ -n "$TARGETS" ]; then
	echo "== published port throughput: peers"
	BERTH_NET_TARGETS=$TARGETS "$BIN" -test.run XXX -test.bench 'PeerPublishedPort' -test.benchtime "$BT" | grep MB/s
fi
fi # throughput

# ---- 3. 200 containers on one user network, each reaching the next by name
N200=${N200:-200}
P200=${P200:-8}
BB=127.0.0.1:5000/busybox:latest
BERTH_BIN=${BERTH_BIN:-$PWD/bin/berth}
fam=""
subnet=""
if nft list chains 2>/dev/null | grep -v 'table ip berth' | grep -q 'hook forward.*policy drop' &&
	[ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" = 1 ]; then
	fam=-6
	subnet="--ipv6 --subnet fd00:b200:$(printf %x $$)::/64"
	echo "(a forward chain with policy drop drops bridged IPv4 here: IPv6 network, ping -6, for every engine)"
fi
# one200 CLI...: create the network, run N200 containers P200 at a time,
# wait until each logged that it reached c<i+1> by name, remove everything.
one200() {
	name=$1
	shift
	# shellcheck disable=SC2086
	"$@" network create $subnet bench200 >/dev/null
	"$@" pull -q "$BB" >/dev/null 2>&1 || true
	t0=$(date +%s.%N)
	seq "$N200" | xargs -P "$P200" -I{} sh -c '
		i={}; next=$(( i % '"$N200"' + 1 ))
		"$@" run -d --name c$i --label berth-bench=net200 --network bench200 '"$BB"' sh -c "
			for j in \$(seq 600); do ping '"$fam"' -c 1 -W 1 c$next >/dev/null 2>&1 && echo reached && exec sleep 3600; sleep 0.2; done
			echo unreachable; exec sleep 3600" >/dev/null' sh "$@"
	t1=$(date +%s.%N)
	todo=$(seq "$N200")
	failed=0
	for _ in $(seq 300); do
		rest=""
		for i in $todo; do
			out=$("$@" logs c$i 2>&1 || true)
			case $out in
			*unreachable*) failed=$((failed + 1)) ;;
			*reached*) ;;
			*) rest="$rest $i" ;;
			esac
		done
		todo=$rest
		[ -z "$todo" ] && break
		sleep 0.5
	done
	left=$(($(echo $todo | wc -w) + failed))
	t2=$(date +%s.%N)
	python3 -c "import sys; t0,t1,t2=map(float,sys.argv[2:5]); print(f'{sys.argv[1]:<8} {int(sys.argv[5])} started in {t1-t0:6.1f} s ({(t1-t0)/int(sys.argv[5])*1000:5.0f} ms each, $P200 at a time); all reached their peer by name after {t2-t0:6.1f} s; not reached: {sys.argv[6]}')" \
		"$name" "$t0" "$t1" "$t2" "$N200" "$left"
	"$@" ps -aq --filter label=berth-bench=net200 | xargs -r "$@" rm -f >/dev/null
	"$@" network rm bench200 >/dev/null
}
# berth_cli: start a berth daemon of its own (own bridge and table) once.
berth_cli() {
	if [ -z "$BERTH_PID" ]; then
		BROOT=$(mktemp -d /var/tmp/berth-netbench.XXXXXX)
		"$BERTH_BIN" daemon --data-root "$BROOT/data" --exec-root "$BROOT/exec" -H "unix://$BROOT/berth.sock" \
			--config-file /dev/null >"$BROOT/daemon.log" 2>&1 &
		BERTH_PID=$!
		for _ in $(seq 100); do "$BERTH_BIN" -H "unix://$BROOT/berth.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
	fi
}
# engine_cli NAME: sets CLI to the engine's command, or returns 1.
engine_cli() {
	case $1 in
	berth) [ -x "$BERTH_BIN" ] || { echo "berth: no $BERTH_BIN (make build); skipped"; return 1; }
		berth_cli; CLI="$BERTH_BIN -H unix://$BROOT/berth.sock" ;;
	docker) /usr/bin/docker info >/dev/null 2>&1 || return 1; CLI=/usr/bin/docker ;;
	podman) command -v podman >/dev/null 2>&1 || return 1; CLI=podman ;;
	*) return 1 ;;
	esac
}
want 200 && echo "== $N200 containers on one user network, each reaching the next by name (load: $(cut -d' ' -f1-3 /proc/loadavg))"
want 200 && for e in ${ENGINES200:-berth docker podman}; do
	# shellcheck disable=SC2086
	engine_cli "$e" && one200 "$e" $CLI
done

# ---- 4. bridge cost through the engines: run --rm busybox true on a
# bridge network vs --network none, alternated RUNSBR times per engine, the
# median of the paired differences (a loaded host drifts between sequential
# series). "default" is the engine's default bridge, "user" a user network
# (docker's default bridge may be absent: dockerd --bridge none).
RUNSBR=${RUNSBR:-15}
ms() {
	s=$(date +%s%N)
	"$@" >/dev/null 2>&1 || { echo fail; return; }
	echo $((($(date +%s%N) - s) / 1000000))
}
want bridge || exit 0
echo "== bridge cost: run --rm busybox true, bridge minus --network none, median of $RUNSBR alternated pairs (load: $(cut -d' ' -f1-3 /proc/loadavg))"
for e in ${ENGINESBR:-berth docker podman}; do
	engine_cli "$e" || continue
	# shellcheck disable=SC2086
	$CLI network create benchbr >/dev/null 2>&1 || true
	for net in default benchbr; do
		nw=""
		[ "$net" = benchbr ] && nw="--network benchbr"
		diffs=""
		none=""
		for _ in $(seq "$RUNSBR"); do
			# shellcheck disable=SC2086
			a=$(ms $CLI run --rm $nw "$BB" true)
			# shellcheck disable=SC2086
			b=$(ms $CLI run --rm --network none "$BB" true)
			[ "$a" = fail ] && { diffs=fail; break; }
			diffs="$diffs $((a - b))"
			none="$none $b"
		done
		if [ "$diffs" = fail ]; then
			echo "$e: run on its $net network fails here; left out"
			continue
		fi
		python3 -c "import statistics as s, sys; d=list(map(int,sys.argv[3].split())); n=list(map(int,sys.argv[4].split())); print(f'{sys.argv[1]:<8} {sys.argv[2]:<8} bridge cost {s.median(d):6.0f} ms (none alone: {s.median(n):5.0f} ms)')" \
			"$e" "$([ "$net" = default ] && echo default || echo user)" "$diffs" "$none"
	done
	# shellcheck disable=SC2086
	$CLI network rm benchbr >/dev/null 2>&1 || true
done
