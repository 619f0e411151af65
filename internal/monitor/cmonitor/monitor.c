/*
 * berth-monitor: the per-container process that holds a container's stdio.
 *
 * Why C: one of these runs beside every container for its whole life, so its
 * cost is multiplied by the number of containers. A minimal Go process has
 * ~0.6 MB of private memory before it does anything; this program stays at a
 * few hundred KB (the goal is podman's conmon, 0.4 MB PSS). It does only what
 * must survive the daemon: create the container (through the OCI runtime, or
 * by forking its init for the daemon, "Fork mode" below) as a
 * subreaper, copy its output to the log file and to attached clients, feed its
 * stdin, resize its terminal, reap it and record its exit status.
 *
 * Linked statically (Makefile): no dynamic loader work per container start
 * (2.5 vs 3.5-4.7 ms of CPU and 29 vs 55 page faults to exec here) and a
 * lower PSS (179 vs 206 kB with 10 containers: no relocated GOT pages).
 *
 * Usage (all paths absolute; the daemon builds the command line):
 *   berth-monitor -i ID -b BUNDLE -s STATEDIR -r RUNTIME [-R RUNTIME_ROOT]
 *                 [-l LOGFILE] [-m MAX_SIZE] [-n MAX_FILES] [-z] [-t] [-I] [-O]
 *                 [-y SYNC_FD] [-F]
 *   -z  gzip rotated log files (docker's compress=true), see below
 *   -t  the container has a terminal (pty through --console-socket)
 *   -I  keep the container's stdin open (docker run -i)
 *   -O  stdin once: close the container's stdin when the first attached
 *       client that writes stdin closes it (docker's StdinOnce)
 *   -F  fork for the daemon instead of running `RUNTIME create` (see
 *       "Fork mode" below); -r is then unused
 *
 * Files in STATEDIR (owned by this process while it runs):
 *   monitor.pid   our pid, written before anything else
 *   pid           the container's init pid (written by the runtime)
 *   runtime.log   the runtime's own error log (JSON lines)
 *   attach.sock   attach socket, see below
 *   ctl           FIFO of control lines: "r ROWS COLS\n" resize, "c\n" close stdin
 *   exit          "CODE\n" written atomically when the container has exited
 *                 (CODE is the exit status, or 128+N when killed by signal N)
 *
 * Sync with the daemon (SYNC_FD, one line, then closed):
 *   "ok PID\n"            created; the init waits for `runtime start`
 *   "err MESSAGE\n"       creation failed; the monitor exits 1
 *
 * Fork mode (-F): the daemon runs berth's runtime in-process and the monitor
 * only forks the container's init for it, so that the init is our child
 * without a runtime process started per container. SYNC_FD is then a
 * SOCK_SEQPACKET socket, one message per packet:
 *   daemon -> monitor  'F' flags(u64) argc(u32) envc(u32) argv\0… env\0…
 *                      with SCM_RIGHTS [exe, fd3, fd4, …]: clone(flags) a
 *                      child with our stdio pipes (or /dev/null with -t) as
 *                      0-2 and the fds as 3, 4, …, which execs
 *                      /proc/self/fd/<exe>
 *   monitor -> daemon  'P' PID (decimal)   the child runs (exec succeeded)
 *                      'X' MESSAGE         clone or exec failed
 *   daemon -> monitor  'C' with SCM_RIGHTS [pty master]   (-t only)
 *                      'O' PID             created; PID is the init
 *                      'E' MESSAGE         creation failed: exit 1
 *   No "ok" line follows; EOF before 'O' counts as 'E'.
 *
 * Attach protocol (attach.sock, SOCK_STREAM):
 *   client -> monitor   1 byte of flags: 1 = stdin, 2 = stdout, 4 = stderr,
 *                       8 = the client has replayed the log and wants only
 *                       new output (reserved; all clients get only new output),
 *                       16 = acknowledge: the monitor answers one 0 byte once
 *                       the client is registered, so a client that waits for
 *                       it before letting the container start misses nothing
 *                       then, if flag 1, raw stdin bytes; shutdown(SHUT_WR)
 *                       ends stdin (closes the container's stdin under -O)
 *   monitor -> client   without a terminal: docker's multiplexed frames
 *                       [stream(1: stdout, 2: stderr), 0, 0, 0, size(4, big endian)] + data
 *                       with a terminal: the raw pty bytes
 *                       EOF when the container's output has ended
 *
 * Log file (json-file driver, docker's on-disk format): one JSON object per
 * line, {"log":"...","stream":"stdout|stderr","time":"RFC3339Nano"}; lines
 * longer than 16 KiB are split like docker does (no trailing newline in the
 * partial entries). With -m, the file rotates at MAX_SIZE bytes keeping
 * MAX_FILES files (FILE, FILE.1, ... FILE.N-1).
 *
 * With -z, a rotated file is compressed as docker does (FILE.1.gz, ...
 * FILE.N-1.gz) by a forked child that execs gzip (PATH, then /bin/gzip):
 *   FILE.1 --(child: gzip -c < FILE.1 > FILE.1.gz.tmp)--> on success the
 *   monitor renames FILE.1.gz.tmp to FILE.1.gz, then unlinks FILE.1.
 * Why a child running gzip rather than zlib in here: the monitor stays a
 * dependency-free binary whose cost per container does not grow (no libz
 * mapped into every monitor), compression never stalls the output pump, and
 * it still happens without the daemon (no line is lost or left behind
 * while the daemon is down). The next rotation waits for the previous
 * child, so names never shift under it. If compression fails (no gzip, a
 * full disk), FILE.N stays uncompressed: readers take FILE.N or FILE.N.gz,
 * the plain one first (both exist only between the rename and the unlink,
 * with the same content).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define LINE_MAX_LOG (16 * 1024)
#define BUF_SIZE (32 * 1024)

enum { STDOUT_STREAM = 1, STDERR_STREAM = 2 };

struct client {
	int fd;
	int flags;
	int got_flags;
};

struct linebuf {
	char data[LINE_MAX_LOG];
	size_t len;
};

static const char *opt_id, *opt_bundle, *opt_state, *opt_runtime, *opt_runtime_root, *opt_log;
static long long opt_max_size;
static int opt_max_files = 1;
static int opt_compress;
static pid_t compress_pid = -1;          /* the gzip child, -1 when none */
static char compress_src[PATH_MAX];      /* the rotated file it compresses */
static int opt_tty, opt_stdin, opt_stdin_once, opt_fork;
static int sync_fd = -1;

static int log_fd = -1;
static long long log_size;
static struct client clients[MAX_CLIENTS];
static struct linebuf lb_out, lb_err;
static int stdin_w = -1; /* our end of the container's stdin (pipe or pty master) */
static int out_r = -1, err_r = -1, pty_master = -1;
static pid_t container_pid = -1;
static int exited, exit_code;

static void die(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sync_fd >= 0) {
		dprintf(sync_fd, "err %s\n", msg);
		close(sync_fd);
		sync_fd = -1;
	}
	fprintf(stderr, "berth-monitor: %s\n", msg);
	exit(1);
}

static char *state_path(const char *name)
{
	static char buf[4][PATH_MAX];
	static int i;
	char *p = buf[i++ % 4];
	snprintf(p, PATH_MAX, "%s/%s", opt_state, name);
	return p;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = {.fd = fd, .events = POLLOUT};
				poll(&pfd, 1, 1000);
				continue;
			}
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* write_file_atomic replaces STATEDIR/name by rename, so a reader sees the
 * old file or the whole new one. No fsync: these files (monitor.pid, exit)
 * describe processes of this boot only, and readers (a restarted daemon)
 * see the page cache; an fsync here cost 2-5 ms of every container start
 * and of every exit report on this machine's disk. */
static void write_file_atomic(const char *name, const char *content)
{
	char tmp[PATH_MAX], dst[PATH_MAX];
	snprintf(dst, sizeof(dst), "%s/%s", opt_state, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", opt_state, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	write_all(fd, content, strlen(content));
	close(fd);
	rename(tmp, dst);
}

/* ---- log file (json-file) ---- */

static void log_open(void)
{
	if (!opt_log)
		return;
	log_fd = open(opt_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (log_fd < 0)
		die("open log %s: %s", opt_log, strerror(errno));
	struct stat st;
	log_size = fstat(log_fd, &st) == 0 ? st.st_size : 0;
}

/* compress_finish completes a gzip child's work; st is its wait status. */
static void compress_finish(int st)
{
	char gz[PATH_MAX + 8], tmp[PATH_MAX + 8];
	snprintf(gz, sizeof(gz), "%s.gz", compress_src);
	snprintf(tmp, sizeof(tmp), "%s.gz.tmp", compress_src);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && rename(tmp, gz) == 0)
		unlink(compress_src);
	else
		unlink(tmp); /* keep the plain file */
	compress_pid = -1;
}

/* compress_wait waits for the gzip child, if any, and completes its work. */
static void compress_wait(void)
{
	int st;
	if (compress_pid <= 0)
		return;
	while (waitpid(compress_pid, &st, 0) < 0) {
		if (errno != EINTR) {
			compress_pid = -1;
			return;
		}
	}
	compress_finish(st);
}

static void compress_start(const char *src)
{
	char tmp[PATH_MAX + 8];
	snprintf(compress_src, sizeof(compress_src), "%s", src);
	snprintf(tmp, sizeof(tmp), "%s.gz.tmp", src);
	pid_t pid = fork();
	if (pid != 0) {
		compress_pid = pid < 0 ? -1 : pid; /* fork failed: stays plain */
		return;
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (nice(10) < 0) { /* best effort: the containers come first */ }
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0)
		_exit(1);
	char *argv[] = {"gzip", "-c", NULL};
	execvp("gzip", argv);
	execv("/bin/gzip", argv);
	_exit(127);
}

/* compress_sweep removes what a monitor killed while compressing left:
 * FILE.i.gz.tmp (incomplete), and FILE.i beside a complete FILE.i.gz. */
static void compress_sweep(void)
{
	char plain[PATH_MAX], path[PATH_MAX + 8];
	for (int i = 1; i < opt_max_files; i++) {
		snprintf(plain, sizeof(plain), "%s.%d", opt_log, i);
		snprintf(path, sizeof(path), "%s.gz.tmp", plain);
		unlink(path);
		snprintf(path, sizeof(path), "%s.gz", plain);
		if (access(path, F_OK) == 0)
			unlink(plain);
	}
}

static void log_rotate(void)
{
	char from[PATH_MAX], to[PATH_MAX], fromgz[PATH_MAX + 8], togz[PATH_MAX + 8];
	close(log_fd);
	log_fd = -1;
	if (opt_max_files <= 1) {
		if (truncate(opt_log, 0) < 0) { /* keep writing after the old content */ }
	} else {
		/* A compression still running must end before names shift. */
		compress_wait();
		for (int i = opt_max_files - 1; i >= 1; i--) {
			if (i == 1)
				snprintf(from, sizeof(from), "%s", opt_log);
			else
				snprintf(from, sizeof(from), "%s.%d", opt_log, i - 1);
			snprintf(to, sizeof(to), "%s.%d", opt_log, i);
			snprintf(fromgz, sizeof(fromgz), "%s.gz", from);
			snprintf(togz, sizeof(togz), "%s.gz", to);
			/* Either form of FILE.i is replaced by either form of FILE.i-1. */
			unlink(to);
			unlink(togz);
			rename(from, to);
			if (i > 1)
				rename(fromgz, togz);
		}
	}
	log_open();
	if (opt_compress && opt_max_files > 1) {
		snprintf(to, sizeof(to), "%s.1", opt_log);
		compress_start(to);
	}
}

/* json_escape appends s[0:n] to out as a JSON string body; returns length. */
static size_t json_escape(char *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		switch (c) {
		case '"': out[o++] = '\\'; out[o++] = '"'; break;
		case '\\': out[o++] = '\\'; out[o++] = '\\'; break;
		case '\n': out[o++] = '\\'; out[o++] = 'n'; break;
		case '\r': out[o++] = '\\'; out[o++] = 'r'; break;
		case '\t': out[o++] = '\\'; out[o++] = 't'; break;
		default:
			if (c < 0x20 || c == '<' || c == '>' || c == '&') {
				out[o++] = '\\'; out[o++] = 'u'; out[o++] = '0'; out[o++] = '0';
				out[o++] = hex[c >> 4]; out[o++] = hex[c & 15];
			} else {
				out[o++] = (char)c;
			}
		}
	}
	return o;
}

static void log_entry(int stream, const char *p, size_t n)
{
	static char out[LINE_MAX_LOG * 6 + 256];
	if (log_fd < 0)
		return;
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t o = 0;
	memcpy(out, "{\"log\":\"", 8);
	o = 8;
	o += json_escape(out + o, p, n);
	o += (size_t)sprintf(out + o, "\",\"stream\":\"%s\",\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ\"}\n",
			     stream == STDERR_STREAM ? "stderr" : "stdout", tm.tm_year + 1900, tm.tm_mon + 1,
			     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
	if (opt_max_size > 0 && log_size > 0 && log_size + (long long)o > opt_max_size)
		log_rotate();
	if (log_fd >= 0 && write_all(log_fd, out, o) == 0)
		log_size += (long long)o;
}

/* log_data splits output into lines, as docker's json-file driver does. */
static void log_data(int stream, const char *p, size_t n)
{
	struct linebuf *lb = stream == STDERR_STREAM ? &lb_err : &lb_out;
	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) + 1 : n;
		if (lb->len + take > sizeof(lb->data)) {
			take = sizeof(lb->data) - lb->len;
			nl = NULL;
		}
		memcpy(lb->data + lb->len, p, take);
		lb->len += take;
		p += take;
		n -= take;
		if (nl || lb->len == sizeof(lb->data)) {
			log_entry(stream, lb->data, lb->len);
			lb->len = 0;
		}
	}
}

static void log_flush(void)
{
	if (lb_out.len)
		log_entry(STDOUT_STREAM, lb_out.data, lb_out.len);
	if (lb_err.len)
		log_entry(STDERR_STREAM, lb_err.data, lb_err.len);
	lb_out.len = lb_err.len = 0;
}

/* ---- attached clients ---- */

static void client_drop(struct client *c)
{
	close(c->fd);
	c->fd = -1;
}

static void broadcast(int stream, const char *p, size_t n)
{
	unsigned char hdr[8] = {0};
	hdr[0] = (unsigned char)stream;
	hdr[4] = (unsigned char)(n >> 24);
	hdr[5] = (unsigned char)(n >> 16);
	hdr[6] = (unsigned char)(n >> 8);
	hdr[7] = (unsigned char)n;
	for (int i = 0; i < MAX_CLIENTS; i++) {
		struct client *c = &clients[i];
		if (c->fd < 0 || !c->got_flags)
			continue;
		if (!(c->flags & (stream == STDERR_STREAM ? 4 : 2)))
			continue;
		if ((!opt_tty && write_all(c->fd, (char *)hdr, 8) < 0) || write_all(c->fd, p, n) < 0)
			client_drop(c);
	}
}

static void close_stdin(void)
{
	if (stdin_w >= 0 && stdin_w != pty_master)
		close(stdin_w);
	stdin_w = -1;
}

static void client_read(struct client *c)
{
	char buf[BUF_SIZE];
	ssize_t n = read(c->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		/* Client closed its write side: end of its stdin. */
		if (c->got_flags && (c->flags & 1) && opt_stdin_once)
			close_stdin();
		if (n < 0) {
			client_drop(c);
		} else {
			/* Keep sending output; stop polling for input. */
			c->flags &= ~1;
			c->flags |= 0x100;
		}
		return;
	}
	char *p = buf;
	if (!c->got_flags) {
		c->flags = (unsigned char)buf[0];
		c->got_flags = 1;
		p++;
		n--;
		if ((c->flags & 16) && write_all(c->fd, "", 1) < 0) {
			client_drop(c);
			return;
		}
	}
	if (n > 0 && (c->flags & 1) && stdin_w >= 0)
		write_all(stdin_w, p, (size_t)n);
}

static void client_accept(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	for (int i = 0; i < MAX_CLIENTS; i++) {
		if (clients[i].fd < 0) {
			clients[i].fd = fd;
			clients[i].flags = 0;
			clients[i].got_flags = 0;
			return;
		}
	}
	close(fd);
}

/* ---- control FIFO ---- */

static void ctl_read(int fd)
{
	static char buf[256];
	static size_t len;
	ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
	if (n <= 0)
		return;
	len += (size_t)n;
	buf[len] = 0;
	char *line = buf, *nl;
	while ((nl = strchr(line, '\n'))) {
		*nl = 0;
		unsigned rows, cols;
		if (sscanf(line, "r %u %u", &rows, &cols) == 2 && pty_master >= 0) {
			struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
			ioctl(pty_master, TIOCSWINSZ, &ws);
		} else if (line[0] == 'c') {
			close_stdin();
		}
		line = nl + 1;
	}
	len = strlen(line);
	memmove(buf, line, len);
}

/* ---- output ---- */

/* pump reads one chunk of container output; returns 0 at EOF. */
static int pump(int fd, int stream)
{
	char buf[BUF_SIZE];
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 1;
	if (n <= 0)
		return 0; /* EOF, or EIO on a pty whose slave is closed */
	log_data(stream, buf, (size_t)n);
	broadcast(stream, buf, (size_t)n);
	return 1;
}

/* ---- creating the container ---- */

static int recv_fd(int sock)
{
	char dummy;
	struct iovec iov = {.iov_base = &dummy, .iov_len = 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) < 0)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static int unix_listen(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		die("socket %s: path too long or %s", path, strerror(errno));
	strcpy(sa.sun_path, path);
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0)
		die("listen %s: %s", path, strerror(errno));
	chmod(path, 0600);
	return fd;
}

static void read_runtime_error(char *out, size_t n)
{
	/* The runtime logs JSON lines {"level":"error","msg":"..."}; take the last msg. */
	char buf[8192];
	out[0] = 0;
	int fd = open(state_path("runtime.log"), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t r = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (r <= 0)
		return;
	buf[r] = 0;
	char *last = NULL, *p = buf;
	while ((p = strstr(p, "\"msg\":\""))) {
		last = p + 7;
		p = last;
	}
	if (!last) {
		size_t l = strlen(buf) < n ? strlen(buf) : n - 1;
		memcpy(out, buf, l);
		out[l] = 0;
		return;
	}
	size_t o = 0;
	for (char *q = last; *q && *q != '"' && o + 1 < n; q++) {
		if (*q == '\\' && q[1]) {
			q++;
			out[o++] = *q == 'n' ? ' ' : *q;
		} else {
			out[o++] = *q;
		}
	}
	out[o] = 0;
}

/* spawn_runtime starts the runtime with stdio stdin/stdout/stderr (-1:
 * /dev/null) and returns its pid, or dies when it cannot be executed.
 *
 * vfork: no copy of our page tables and no copy-on-write faults before the
 * exec. Safe here: we install no signal handlers (the child's dispositions
 * are its own; vfork shares only memory), and the child only calls
 * async-signal-safe functions before execve or _exit. Not posix_spawn:
 * glibc's leaves its internal signal 32 ignored across the exec, and the
 * container would inherit that. The runtime gets a clean signal state: our
 * blocked SIGCHLD and ignored SIGPIPE/SIGHUP/SIGINT, and any signal ignored
 * by whoever started us, are not the container's. */
/* A kernel struct sigaction, all zero: SIG_DFL, no flags, empty mask. */
static const struct {
	void *handler;
	unsigned long flags;
	void *restorer;
	uint64_t mask;
} k_sig_dfl;

/* reset_signals gives a child about to exec a clean signal state: every
 * disposition back to default, not only the ones we changed (an ignored
 * signal survives exec, and whatever started us may have ignored some: a CI
 * run once gave a container signal 32 ignored), nothing blocked. Raw
 * rt_sigaction: glibc refuses its internal signals 32 and 33. */
static void reset_signals(void)
{
	sigset_t none;
	for (int s = 1; s <= 64; s++)
		if (s != SIGKILL && s != SIGSTOP)
			syscall(SYS_rt_sigaction, s, &k_sig_dfl, NULL, 8);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* stdio_pipes makes the container's stdio pipes (none with a terminal). */
static void stdio_pipes(int in[2], int out[2], int err[2])
{
	if (opt_tty)
		return;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
	if (opt_stdin && pipe2(in, O_CLOEXEC) < 0)
		die("pipe: %s", strerror(errno));
}

/* keep_our_ends closes the container's ends of the pipes once it has them. */
static void keep_our_ends(int in[2], int out[2], int err[2])
{
	if (in[0] >= 0)
		close(in[0]);
	if (out[1] >= 0)
		close(out[1]);
	if (err[1] >= 0)
		close(err[1]);
	stdin_w = in[1];
	out_r = out[0];
	err_r = err[0];
}

static pid_t spawn_runtime(char **argv, char **envp, int in, int out, int err)
{
	/* statics: what the child reads must not live in registers vfork
	 * may clobber; exec_errno is written by the child (shared memory) */
	static char **c_argv, **c_envp;
	static int c_fd[3];
	static volatile int exec_errno;
	c_argv = argv;
	c_envp = envp;
	c_fd[0] = in;
	c_fd[1] = out;
	c_fd[2] = err;
	exec_errno = 0;
	pid_t pid = vfork();
	if (pid < 0)
		die("vfork: %s", strerror(errno));
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR | O_CLOEXEC);
		for (int i = 0; i < 3; i++)
			dup2(c_fd[i] >= 0 ? c_fd[i] : dn, i);
		reset_signals();
		execve(opt_runtime, c_argv, c_envp);
		exec_errno = errno;
		_exit(127);
	}
	if (exec_errno != 0) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		die("exec %s: %s", opt_runtime, strerror(exec_errno));
	}
	return pid;
}

static void create_container(void)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	int console_l = -1;
	/* The runtime connects by a path that resolves through our cwd. */
	char console_path[64];
	snprintf(console_path, sizeof(console_path), "/proc/%d/cwd/console.sock", getpid());

	if (opt_tty)
		console_l = unix_listen("console.sock");
	stdio_pipes(in, out, err);

	char *argv[24];
	int a = 0;
	argv[a++] = (char *)opt_runtime;
	if (opt_runtime_root) {
		argv[a++] = "--root";
		argv[a++] = (char *)opt_runtime_root;
	}
	argv[a++] = "--log";
	argv[a++] = state_path("runtime.log");
	argv[a++] = "--log-format";
	argv[a++] = "json";
	argv[a++] = "create";
	argv[a++] = "--bundle";
	argv[a++] = (char *)opt_bundle;
	argv[a++] = "--pid-file";
	argv[a++] = state_path("pid");
	if (opt_tty) {
		argv[a++] = "--console-socket";
		argv[a++] = console_path;
	}
	argv[a++] = (char *)opt_id;
	argv[a] = NULL;

	/* A Go runtime (berth-runtime, runc) starts a thread for each idle P
	 * it wakes; create is sequential work that lives for milliseconds,
	 * and each thread costs its stack's page faults. */
	size_t ne = 0;
	int have_procs = 0;
	for (; environ[ne]; ne++)
		have_procs |= strncmp(environ[ne], "GOMAXPROCS=", 11) == 0;
	char **envp = calloc(ne + 2, sizeof(char *));
	if (envp == NULL)
		die("out of memory");
	memcpy(envp, environ, ne * sizeof(char *));
	if (!have_procs)
		envp[ne] = "GOMAXPROCS=1";

	pid_t pid = spawn_runtime(argv, envp, in[0], out[1], err[1]);
	free(envp);
	keep_our_ends(in, out, err);

	if (opt_tty) {
		/* Wait for the pty master, or for the runtime to fail. */
		for (;;) {
			struct pollfd pfd = {.fd = console_l, .events = POLLIN};
			int r = poll(&pfd, 1, 200);
			if (r > 0) {
				int s = accept4(console_l, NULL, NULL, SOCK_CLOEXEC);
				if (s >= 0) {
					pty_master = recv_fd(s);
					close(s);
				}
				break;
			}
			int st;
			if (waitpid(pid, &st, WNOHANG) == pid) {
				char msg[1024];
				read_runtime_error(msg, sizeof(msg));
				die("%s", msg[0] ? msg : "runtime create failed");
			}
		}
		close(console_l);
		unlink("console.sock");
		if (pty_master < 0)
			die("did not receive the terminal from the runtime");
		stdin_w = opt_stdin ? pty_master : -1;
	}

	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		char msg[1024];
		read_runtime_error(msg, sizeof(msg));
		die("%s", msg[0] ? msg : "runtime create failed");
	}

	char buf[32] = {0};
	int fd = open(state_path("pid"), O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		die("read pid file: %s", strerror(errno));
	close(fd);
	container_pid = (pid_t)atoi(buf);
	if (container_pid <= 0)
		die("bad pid file");
}

/* Fork mode: see the top of the file. */
#define FORK_MAX_FDS 32
#define FORK_MSG_MAX 65536

static ssize_t recv_packet(char *buf, size_t n, int *fds, int *nfds)
{
	struct iovec iov = {.iov_base = buf, .iov_len = n};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * FORK_MAX_FDS)];
	} u;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
	ssize_t r;
	while ((r = recvmsg(sync_fd, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	*nfds = 0;
	if (r < 0)
		return r; /* msg is untouched: its control buffer holds no fds */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		if (k > FORK_MAX_FDS - *nfds) /* cannot happen: the buffer holds no more */
			k = FORK_MAX_FDS - *nfds;
		memcpy(fds + *nfds, CMSG_DATA(c), sizeof(int) * (size_t)k);
		*nfds += k;
	}
	if (r >= 0 && (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		errno = EMSGSIZE;
		return -1;
	}
	return r;
}

static void send_reply(char type, const char *text)
{
	char buf[1024];
	int n = snprintf(buf, sizeof(buf), "%c%s", type, text);
	if (n > (int)sizeof(buf) - 1)
		n = (int)sizeof(buf) - 1;
	while (send(sync_fd, buf, (size_t)n, MSG_NOSIGNAL) < 0 && errno == EINTR)
		;
}

/* fork_child clones the init as the daemon asked ('F' message) and returns
 * its pid once it has exec'd, or -1 after replying 'X'. */
static pid_t fork_child(const char *msg, size_t len, int *fds, int nfds, int in, int out, int err)
{
	static char *argv[256], *envp[256];
	uint64_t flags;
	uint32_t argc, envc;
	if (len < 1 + 8 + 4 + 4 || nfds < 1) {
		send_reply('X', "bad fork request");
		return -1;
	}
	memcpy(&flags, msg + 1, 8);
	memcpy(&argc, msg + 9, 4);
	memcpy(&envc, msg + 13, 4);
	if (argc < 1 || argc > 255 || envc > 255) {
		send_reply('X', "bad fork request");
		return -1;
	}
	const char *p = msg + 17, *end = msg + len;
	for (uint32_t i = 0; i < argc + envc; i++) {
		const char *z = memchr(p, 0, (size_t)(end - p));
		if (!z) {
			send_reply('X', "bad fork request");
			return -1;
		}
		if (i < argc)
			argv[i] = (char *)p;
		else
			envp[i - argc] = (char *)p;
		p = z + 1;
	}
	argv[argc] = NULL;
	envp[envc] = NULL;

	/* The child reports a failed exec through a close-on-exec pipe: EOF
	 * means it exec'd. */
	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0) {
		send_reply('X', strerror(errno));
		return -1;
	}
	char exe_path[64];
	pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(flags | SIGCHLD), NULL, NULL, NULL, NULL);
	if (pid == 0) {
		int dn = open("/dev/null", O_RDWR | O_CLOEXEC);
		int io[3] = {in >= 0 ? in : dn, out >= 0 ? out : dn, err >= 0 ? err : dn};
		/* Lift everything above the targets 0 .. nfds+1 first. */
		int hi[FORK_MAX_FDS + 3];
		for (int i = 0; i < 3; i++)
			hi[i] = fcntl(io[i], F_DUPFD_CLOEXEC, nfds + 3);
		for (int i = 0; i < nfds; i++)
			hi[3 + i] = fcntl(fds[i], F_DUPFD_CLOEXEC, nfds + 3);
		for (int i = 0; i < 3; i++)
			dup2(hi[i], i);
		for (int i = 1; i < nfds; i++)
			dup2(hi[3 + i], 3 + i - 1);
		snprintf(exe_path, sizeof(exe_path), "/proc/self/fd/%d", hi[3]);
		reset_signals();
		execve(exe_path, argv, envp);
		int e = errno;
		(void)!write(ep[1], &e, sizeof(e));
		_exit(127);
	}
	int e = errno;
	close(ep[1]);
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	if (pid < 0) {
		close(ep[0]);
		send_reply('X', strerror(e));
		return -1;
	}
	ssize_t r;
	while ((r = read(ep[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(ep[0]);
	if (r == sizeof(e)) {
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		char m[256];
		snprintf(m, sizeof(m), "exec container init: %s", strerror(e));
		send_reply('X', m);
		return -1;
	}
	char num[32];
	snprintf(num, sizeof(num), "%d", pid);
	send_reply('P', num);
	return pid;
}

/* fork_container serves the daemon's fork-mode requests until it says the
 * container is created ('O') or failed. */
static void fork_container(void)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	stdio_pipes(in, out, err);
	static char msg[FORK_MSG_MAX];
	int fds[FORK_MAX_FDS];
	int forked = 0;
	for (;;) {
		int nfds;
		ssize_t n = recv_packet(msg, sizeof(msg) - 1, fds, &nfds);
		if (n <= 0)
			die("daemon went away during create: %s", n < 0 ? strerror(errno) : "EOF");
		msg[n] = 0;
		switch (msg[0]) {
		case 'F':
			if (forked) {
				for (int i = 0; i < nfds; i++)
					close(fds[i]);
				send_reply('X', "init already forked");
				break;
			}
			if (fork_child(msg, (size_t)n, fds, nfds, in[0], out[1], err[1]) > 0)
				forked = 1;
			break;
		case 'C':
			if (nfds < 1 || !opt_tty)
				die("bad console message");
			pty_master = fds[0];
			for (int i = 1; i < nfds; i++)
				close(fds[i]);
			break;
		case 'O':
			container_pid = (pid_t)atoi(msg + 1);
			if (container_pid <= 0)
				die("bad pid from the daemon");
			goto created;
		default:
			for (int i = 0; i < nfds; i++)
				close(fds[i]);
			die("%s", msg[0] == 'E' ? msg + 1 : "bad message from the daemon");
		}
	}
created:
	keep_our_ends(in, out, err);
	if (opt_tty) {
		if (pty_master < 0)
			die("did not receive the terminal from the daemon");
		stdin_w = opt_stdin ? pty_master : -1;
	}
	close(sync_fd);
	sync_fd = -1;
}

static void reap(void)
{
	int st;
	pid_t p;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == compress_pid)
			compress_finish(st);
		if (p != container_pid)
			continue;
		exited = 1;
		if (WIFEXITED(st))
			exit_code = WEXITSTATUS(st);
		else if (WIFSIGNALED(st))
			exit_code = 128 + WTERMSIG(st);
	}
}

int main(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "i:b:s:r:R:l:m:n:ztIOy:F")) != -1) {
		switch (c) {
		case 'i': opt_id = optarg; break;
		case 'b': opt_bundle = optarg; break;
		case 's': opt_state = optarg; break;
		case 'r': opt_runtime = optarg; break;
		case 'R': opt_runtime_root = optarg; break;
		case 'l': opt_log = optarg; break;
		case 'm': opt_max_size = atoll(optarg); break;
		case 'n': opt_max_files = atoi(optarg); break;
		case 'z': opt_compress = 1; break;
		case 't': opt_tty = 1; break;
		case 'I': opt_stdin = 1; break;
		case 'O': opt_stdin_once = 1; break;
		case 'y': sync_fd = atoi(optarg); break;
		case 'F': opt_fork = 1; break;
		default: fprintf(stderr, "berth-monitor: bad usage\n"); return 2;
		}
	}
	if (!opt_id || !opt_bundle || !opt_state || (!opt_runtime && !opt_fork)) {
		fprintf(stderr, "berth-monitor: -i, -b, -s and -r (or -F) are required\n");
		return 2;
	}
	if (opt_fork && sync_fd < 0) {
		fprintf(stderr, "berth-monitor: -F needs -y\n");
		return 2;
	}
	if (sync_fd >= 0)
		fcntl(sync_fd, F_SETFD, FD_CLOEXEC);
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i].fd = -1;

	/* Sockets are bound by relative name from inside the state directory:
	 * sun_path holds only 108 bytes, and state paths can be longer. */
	if (chdir(opt_state) < 0) {
		fprintf(stderr, "berth-monitor: chdir %s: %s\n", opt_state, strerror(errno));
		return 1;
	}
	char pidbuf[32];
	snprintf(pidbuf, sizeof(pidbuf), "%d\n", getpid());
	write_file_atomic("monitor.pid", pidbuf);

	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		die("set child subreaper: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	/* The container is ours even while create runs; block signals that would kill us. */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);

	log_open();
	if (opt_log && opt_compress)
		compress_sweep();
	int attach_l = unix_listen("attach.sock");
	char *ctl = state_path("ctl");
	unlink(ctl);
	if (mkfifo(ctl, 0600) < 0)
		die("mkfifo %s: %s", ctl, strerror(errno));
	int ctl_fd = open(ctl, O_RDWR | O_NONBLOCK | O_CLOEXEC);

	if (opt_fork)
		fork_container();
	else
		create_container();
	if (sync_fd >= 0) {
		dprintf(sync_fd, "ok %d\n", container_pid);
		close(sync_fd);
		sync_fd = -1;
	}
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	dup2(devnull, 0);
	dup2(devnull, 1);
	dup2(devnull, 2);

	int outfd = opt_tty ? pty_master : out_r;
	int errfd = opt_tty ? -1 : err_r;
	if (outfd >= 0)
		fcntl(outfd, F_SETFL, O_NONBLOCK);
	if (errfd >= 0)
		fcntl(errfd, F_SETFL, O_NONBLOCK);

	/* Run until the container has exited and its output has ended. Output
	 * may outlive the init when a process outside a pid namespace holds the
	 * pipe: give it a grace period after the exit, then stop. */
	time_t exit_seen = 0;
	for (;;) {
		struct pollfd pfds[4 + MAX_CLIENTS];
		int map[4 + MAX_CLIENTS];
		int n = 0;
		pfds[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
		map[n++] = -1;
		pfds[n] = (struct pollfd){.fd = attach_l, .events = POLLIN};
		map[n++] = -2;
		pfds[n] = (struct pollfd){.fd = ctl_fd, .events = POLLIN};
		map[n++] = -3;
		if (outfd >= 0) {
			pfds[n] = (struct pollfd){.fd = outfd, .events = POLLIN};
			map[n++] = -4;
		}
		if (errfd >= 0) {
			pfds[n] = (struct pollfd){.fd = errfd, .events = POLLIN};
			map[n++] = -5;
		}
		for (int i = 0; i < MAX_CLIENTS; i++) {
			if (clients[i].fd >= 0 && !(clients[i].flags & 0x100)) {
				pfds[n] = (struct pollfd){.fd = clients[i].fd, .events = POLLIN};
				map[n++] = i;
			}
		}
		if (exited && outfd < 0 && errfd < 0)
			break;
		int timeout = -1;
		if (exited) {
			if (!exit_seen)
				exit_seen = time(NULL);
			if (time(NULL) - exit_seen >= 2)
				break;
			timeout = 200;
		}
		int r = poll(pfds, (nfds_t)n, timeout);
		if (r < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n && r > 0; i++) {
			if (!pfds[i].revents)
				continue;
			switch (map[i]) {
			case -1: {
				struct signalfd_siginfo si;
				while (read(sfd, &si, sizeof(si)) == sizeof(si))
					;
				reap();
				break;
			}
			case -2: client_accept(attach_l); break;
			case -3: ctl_read(ctl_fd); break;
			case -4:
				/* EOF, or EIO once every pty slave is closed: output has ended. */
				if (!pump(outfd, STDOUT_STREAM)) {
					close(outfd);
					if (outfd == pty_master)
						pty_master = stdin_w = -1;
					outfd = -1;
				}
				break;
			case -5:
				if (!pump(errfd, STDERR_STREAM)) {
					close(errfd);
					errfd = -1;
				}
				break;
			default: client_read(&clients[map[i]]); break;
			}
		}
		if (!exited)
			reap();
	}
	log_flush();
	compress_wait();

	char code[32];
	snprintf(code, sizeof(code), "%d\n", exit_code);
	write_file_atomic("exit", code);
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i].fd >= 0)
			close(clients[i].fd);
	unlink("attach.sock");
	unlink(ctl);
	/* No fsync of the log either (docker's json-file does none): the
	 * lines are in the page cache, which survives the daemon and us. */
	return 0;
}
