/*
 * berth-init: the small PID 1 that `run --init` puts in front of the
 * container's command (docker uses tini for this). It runs the command as
 * its child, forwards the signals it receives to it, reaps every orphan the
 * kernel re-parents to it, and exits with the command's status (128+N when
 * the command was killed by signal N).
 *
 * Usage: berth-init -- command [args...]
 * Built statically: it runs inside containers whose libc is unknown.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int first = 1;
	if (argc > 1 && strcmp(argv[1], "--") == 0)
		first = 2;
	if (first >= argc) {
		fprintf(stderr, "berth-init: usage: berth-init -- command [args...]\n");
		return 2;
	}
	sigset_t all, old;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &old);

	pid_t child = fork();
	if (child < 0) {
		perror("berth-init: fork");
		return 1;
	}
	if (child == 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		/* A new process group, so that a terminal's ^C reaches the command. */
		setpgid(0, 0);
		if (isatty(STDIN_FILENO))
			tcsetpgrp(STDIN_FILENO, getpid());
		execvp(argv[first], argv + first);
		fprintf(stderr, "berth-init: exec %s: %s\n", argv[first], strerror(errno));
		_exit(errno == ENOENT ? 127 : 126);
	}
	/* Reap orphans even when not PID 1 (e.g. --pid=host). */
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&all, &si);
		if (sig < 0) {
			if (errno == EINTR)
				continue;
			perror("berth-init: sigwaitinfo");
			return 1;
		}
		if (sig != SIGCHLD) {
			/* Stop signals from the terminal would stop us, not the command. */
			if (sig != SIGTSTP && sig != SIGTTIN && sig != SIGTTOU)
				kill(child, sig);
			continue;
		}
		int status;
		pid_t p;
		while ((p = waitpid(-1, &status, WNOHANG)) > 0) {
			if (p != child)
				continue;
			if (WIFEXITED(status))
				return WEXITSTATUS(status);
			if (WIFSIGNALED(status))
				return 128 + WTERMSIG(status);
		}
	}
}
