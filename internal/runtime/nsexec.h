// Shared between nsexec.c (bootstrap) and cinit.c (the C container init).
#ifndef BERTH_NSEXEC_H
#define BERTH_NSEXEC_H
#include <stdint.h>
#include <stddef.h>

#define MSG_ERROR 5

// nsexec_send writes one framed message on the init socket (MSG_NOSIGNAL:
// a parent that is gone is an error, not a SIGPIPE). -1 on failure.
int nsexec_send(uint32_t type, const void *data, uint32_t len);
// nsexec_read reads exactly len bytes from the init socket. -1 on EOF/error.
int nsexec_read(void *buf, size_t len);
// cinit_run executes a plan (cinit.c); it never returns.
__attribute__((noreturn)) void cinit_run(const char *plan, uint32_t len);
#endif
