// nsexec: the single-threaded part of berth's container init.
//
// Joining a user or mount namespace (setns) and unsharing a user namespace
// need a single-threaded process, which a Go program never is once its
// runtime starts. So this constructor runs before the Go runtime whenever
// the environment carries _BERTH_INITPIPE=<fd>: it joins the namespaces
// named by path (user first), unshares the new ones, lets the parent write
// the id maps, and forks once when the process must enter a new or joined
// PID (or time) namespace. The forked grandchild returns from the
// constructor and becomes the Go init (see init_linux.go); every other
// process that gets here exits.
//
// With _BERTH_UNSHARE=<CLONE_NEW* bits> (no user namespace involved) it
// first unshares those namespaces, before the bootstrap arrives.
//
// Messages on the init socket (SOCK_STREAM socketpair, both directions) are
// framed as  u32 type | u32 length | payload  in host byte order:
//
//   parent (berth-runtime)                    child (this constructor)
//   ------------------------------------------------------------------------
//   BOOTSTRAP  records, see below      ---->
//                                      <----  USERMAP_REQ  u32 pid  (new userns only)
//   writes /proc/pid/{uid,gid}_map,
//   setgroups                          ---->  USERMAP_ACK  (empty)
//                                      <----  CHILD_PID  u32 pid  (the process that
//                                             will run Go init, host pid)
//                                      <----  ERROR  text  (any step; child exits 1)
//   ... then the Go protocol of init_linux.go on the same socket.
//
// BOOTSTRAP payload: a sequence of records  u32 kind | u32 length | bytes:
//   R_CLONEFLAGS u32    namespaces to unshare (CLONE_NEW*)
//   R_NSPATH     "type=path"  namespace to join; type as in the OCI spec
//   R_TIMENS     text   lines for /proc/self/timens_offsets
//   R_PLAN       ops    the whole container init (cinit.c): the process
//                       that would return into the Go init runs it instead
//
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "nsexec.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

enum {
	MSG_BOOTSTRAP = 1,
	MSG_USERMAP_REQ = 2,
	MSG_USERMAP_ACK = 3,
	MSG_CHILD_PID = 4,
};

enum {
	R_CLONEFLAGS = 1,
	R_NSPATH = 2,
	R_TIMENS = 3,
	R_PLAN = 4,
};

#define MAX_NS 16

static int initfd = -1;

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		// the init socket with MSG_NOSIGNAL: a parent that is gone is an
		// error, not a SIGPIPE
		ssize_t n = fd == initfd ? send(fd, p, len, MSG_NOSIGNAL) : write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

int nsexec_send(uint32_t type, const void *data, uint32_t len)
{
	uint32_t hdr[2] = {type, len};
	if (write_all(initfd, hdr, sizeof(hdr)) < 0 || (len && write_all(initfd, data, len) < 0))
		return -1;
	return 0;
}

int nsexec_read(void *buf, size_t len) { return read_all(initfd, buf, len); }

static void send_msg(uint32_t type, const void *data, uint32_t len)
{
	if (nsexec_send(type, data, len) < 0)
		_exit(1);
}

__attribute__((noreturn, format(printf, 1, 2))) static void bail(const char *fmt, ...)
{
	char buf[512];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 64, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(buf) - 64)
		n = sizeof(buf) - 64;
	if (saved)
		n += snprintf(buf + n, 64, ": %s", strerror(saved));
	send_msg(MSG_ERROR, buf, n);
	_exit(1);
}

// loopback_up sets "lo" up in the network namespace we just made, as runc
// and crun do (docker run --network none relies on 127.0.0.1). Here, before
// the bootstrap, it costs a socket and two ioctls beside the parent's work.
static void loopback_up(void)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		bail("loopback of the new network namespace");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		bail("loopback of the new network namespace: lo up");
	close(s);
}

static int ns_flag(const char *type)
{
	static const struct {
		const char *name;
		int flag;
	} t[] = {
		{"user", CLONE_NEWUSER}, {"mount", CLONE_NEWNS}, {"pid", CLONE_NEWPID},
		{"network", CLONE_NEWNET}, {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS},
		{"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].name, type) == 0)
			return t[i].flag;
	return 0;
}

__attribute__((constructor)) static void berth_nsexec(void)
{
	const char *env = getenv("_BERTH_INITPIPE");
	if (env == NULL)
		return;
	initfd = atoi(env);
	if (initfd < 3)
		return;
	// Until exec the init must not be reachable through /proc by container
	// processes (ptrace, /proc/pid/exe, fds): CVE-2019-5736 and friends.
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);

	// Namespaces the parent lets us make at once, while it sets up our
	// cgroups (no user namespace is involved then: see spawn.go).
	const char *early = getenv("_BERTH_UNSHARE");
	if (early != NULL) {
		unsigned long f = strtoul(early, NULL, 10);
		if (f & (CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWTIME))
			bail("nsexec: bad _BERTH_UNSHARE 0x%lx", f);
		if (f != 0 && unshare(f) < 0)
			bail("unshare namespaces 0x%lx", f);
		if (f & CLONE_NEWNET)
			loopback_up();
	}

	uint32_t hdr[2];
	if (read_all(initfd, hdr, sizeof(hdr)) < 0 || hdr[0] != MSG_BOOTSTRAP)
		bail("nsexec: reading bootstrap");
	char *buf = malloc(hdr[1] + 1);
	if (buf == NULL || read_all(initfd, buf, hdr[1]) < 0)
		bail("nsexec: reading bootstrap payload");
	buf[hdr[1]] = 0;

	uint32_t cloneflags = 0;
	const char *timens = NULL;
	const char *plan = NULL;
	uint32_t planlen = 0;
	struct {
		int flag;
		int fd;
		const char *path;
	} ns[MAX_NS];
	int nns = 0;

	for (uint32_t off = 0; off + 8 <= hdr[1];) {
		uint32_t kind, len;
		memcpy(&kind, buf + off, 4);
		memcpy(&len, buf + off + 4, 4);
		off += 8;
		if (off + len > hdr[1])
			bail("nsexec: truncated bootstrap record");
		char *val = buf + off;
		switch (kind) {
		case R_CLONEFLAGS:
			memcpy(&cloneflags, val, 4);
			break;
		case R_NSPATH: {
			// "type=path", NUL-terminated in place (the next record's header
			// has been read already).
			char *s = strndup(val, len);
			char *eq = s ? strchr(s, '=') : NULL;
			if (eq == NULL || nns == MAX_NS)
				bail("nsexec: bad namespace record");
			*eq = 0;
			ns[nns].flag = ns_flag(s);
			ns[nns].path = eq + 1;
			if (ns[nns].flag == 0)
				bail("nsexec: unknown namespace type %s", s);
			nns++;
			break;
		}
		case R_TIMENS:
			timens = strndup(val, len);
			break;
		case R_PLAN:
			plan = val;
			planlen = len;
			break;
		}
		off += len;
	}

	// Open every path before joining any: joining the mount namespace
	// changes what the later paths resolve to.
	for (int i = 0; i < nns; i++) {
		ns[i].fd = open(ns[i].path, O_RDONLY | O_CLOEXEC);
		if (ns[i].fd < 0)
			bail("open namespace %s", ns[i].path);
	}
	// The user namespace first: it grants the rights to join the others.
	for (int i = 0; i < nns; i++) {
		if (ns[i].flag != CLONE_NEWUSER)
			continue;
		if (setns(ns[i].fd, CLONE_NEWUSER) < 0)
			bail("join user namespace %s", ns[i].path);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			bail("become root in joined user namespace");
	}
	int joined_pid = 0;
	for (int pass = 0; pass < 2; pass++) {
		// Mount namespace last so that nothing else resolves through it.
		for (int i = 0; i < nns; i++) {
			if (ns[i].flag == CLONE_NEWUSER || (pass == 0) != (ns[i].flag != CLONE_NEWNS))
				continue;
			if (setns(ns[i].fd, ns[i].flag) < 0)
				bail("join namespace %s", ns[i].path);
			if (ns[i].flag == CLONE_NEWPID || ns[i].flag == CLONE_NEWTIME)
				joined_pid = 1;
		}
	}
	for (int i = 0; i < nns; i++)
		close(ns[i].fd);

	if (cloneflags & CLONE_NEWUSER) {
		if (unshare(CLONE_NEWUSER) < 0)
			bail("unshare user namespace");
		uint32_t pid = getpid();
		send_msg(MSG_USERMAP_REQ, &pid, sizeof(pid));
		if (read_all(initfd, hdr, sizeof(hdr)) < 0 || hdr[0] != MSG_USERMAP_ACK)
			bail("nsexec: waiting for id maps");
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
			bail("become root in new user namespace");
	}
	if (cloneflags & ~CLONE_NEWUSER) {
		if (unshare(cloneflags & ~CLONE_NEWUSER) < 0)
			bail("unshare namespaces 0x%x", cloneflags & ~CLONE_NEWUSER);
		if (cloneflags & CLONE_NEWNET)
			loopback_up();
	}
	if (timens != NULL && (cloneflags & CLONE_NEWTIME)) {
		int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write_all(fd, timens, strlen(timens)) < 0)
			bail("write time namespace offsets");
		close(fd);
	}

	uint32_t pid = getpid();
	if (joined_pid || (cloneflags & (CLONE_NEWPID | CLONE_NEWTIME))) {
		// With a plan the child talks to the parent itself: it must not
		// before CHILD_PID is out. The pipe reads EOF once we have exited.
		int sync[2] = {-1, -1};
		if (plan != NULL && pipe2(sync, O_CLOEXEC) < 0)
			bail("nsexec: pipe");
		pid_t child = fork();
		if (child < 0)
			bail("fork into pid namespace");
		if (child > 0) {
			pid = child;
			send_msg(MSG_CHILD_PID, &pid, sizeof(pid));
			_exit(0);
		}
		if (plan != NULL) {
			char c;
			close(sync[1]);
			while (read(sync[0], &c, 1) < 0 && errno == EINTR)
				;
			close(sync[0]);
			cinit_run(plan, planlen);
		}
		free(buf);
		return;
	}
	send_msg(MSG_CHILD_PID, &pid, sizeof(pid));
	if (plan != NULL)
		cinit_run(plan, planlen);
	free(buf);
}
