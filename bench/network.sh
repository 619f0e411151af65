#!/bin/sh
# Network set-up cost and published-port throughput of internal/network
# (root). Runs the Go benchmarks in a throwaway "host" namespace, so the real
# host's firewall (dockerd's) is not involved.
#   ConnectDisconnect: Connect + Release per container (veth pair into a
#     fresh netns, addresses, routes; +port: host port reservation and one
#     nftables batch each way; +dns: embedded DNS sockets), store synced
#     (one bbolt fsync per step, as the daemon's store does).
#   ConnectNoSync: the same with the store unsynced: the network work alone.
#   PublishedPortThroughput: host → container through a published port via
#     127.0.0.1 and via the host's address, and direct (no NAT), MB/s and
#     CPU seconds per GB (sender + receiver in one process).
# Goal (issue 5): bridge set-up ≤ 5 ms per container; docker ~150 ms,
# podman ~315 ms on this machine (peers/README.md).
set -eu
cd "$(dirname "$0")/.."
N=${N:-100}
go test -count=1 -run XXX -bench 'ConnectDisconnect|ConnectNoSync' -benchtime "${N}x" ./internal/network | grep -E 'ms/op'
go test -count=1 -run XXX -bench 'PublishedPortThroughput' -benchtime 3s ./internal/network | grep -E 'MB/s'
