#!/bin/sh
# quickstart: install build dependencies, build and install berth, start the
# daemon, make a busybox image offline (from Debian's busybox-static) and run
# a container. Run as root on Debian 12.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export PATH="/usr/local/go/bin:$PATH"

apt-get update -qq
apt-get install -y -qq --no-install-recommends gcc make libc6-dev musl-tools busybox-static ca-certificates git >/dev/null
if ! command -v go >/dev/null; then
	# Debian's Go is older than go.mod asks; it fetches the right toolchain
	# from the Go module proxy (GOTOOLCHAIN=auto) when it is 1.21 or newer.
	apt-get install -y -qq -t bookworm-backports golang-go >/dev/null 2>&1 || apt-get install -y -qq golang-go >/dev/null
fi

make build
make install

sock=/run/berth/berth.sock
if ! berth version >/dev/null 2>&1; then
	mkdir -p /var/log
	nohup berth daemon >/var/log/berth.log 2>&1 &
	i=0
	until [ -S "$sock" ] && berth version >/dev/null 2>&1; do
		i=$((i + 1))
		[ "$i" -lt 100 ] || { echo "berth daemon did not start; see /var/log/berth.log" >&2; exit 1; }
		sleep 0.1
	done
fi

if ! berth image inspect busybox >/dev/null 2>&1; then
	rootfs=$(mktemp -d)
	mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root"
	cp /bin/busybox "$rootfs/bin/busybox"
	for applet in $(/bin/busybox --list); do
		[ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
	tar -C "$rootfs" -c . | berth import --change 'CMD ["sh"]' --change 'ENV PATH=/bin' - busybox:latest
	rm -rf "$rootfs"
fi

berth run --rm busybox echo hello from berth
