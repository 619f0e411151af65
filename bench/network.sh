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
set -eu
cd "$(dirname "$0")/.."
N=${N:-100}
BT=${BENCHTIME:-3s}
BIN=$(mktemp -d)/network.test
cleanup() {
	/usr/bin/docker rm -f berth-netbench >/dev/null 2>&1 || true
	/usr/bin/docker network rm berth-netbench >/dev/null 2>&1 || true
	podman rm -f berth-netbench >/dev/null 2>&1 || true
	rm -rf "$(dirname "$BIN")"
}
trap cleanup EXIT
CGO_ENABLED=0 go test -c -o "$BIN" ./internal/network

echo "== bridge set-up cost (berth)"
"$BIN" -test.run XXX -test.bench 'ConnectDisconnect|ConnectNoSync' -test.benchtime "${N}x" | grep ms/op

echo "== 200 containers on one user network, each reaching the next by name (berth)"
"$BIN" -test.run XXX -test.bench 'UserNetwork200' -test.benchtime 1x | grep connect

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
