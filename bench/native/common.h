/*
 * Shared helpers for the benchmark's C load client (wsload.c) and ideal
 * server (wsserver.c): growable byte buffers, a monotonic clock, and
 * WebSocket frame encoding/decoding (RFC 6455). Header-only so that each
 * program builds with a single `cc -O2 file.c` and no build system.
 */
#ifndef WIRECHAT_BENCH_COMMON_H
#define WIRECHAT_BENCH_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>

/* A growable byte buffer; `off` is how much has already been consumed. */
typedef struct {
  uint8_t *p;
  size_t len, cap, off;
} buf_t;

static inline void die(const char *msg) {
  perror(msg);
  exit(2);
}

static inline void buf_reserve(buf_t *b, size_t extra) {
  if (b->len + extra <= b->cap) return;
  /* Compact before growing: consumed bytes at the front are dead weight. */
  if (b->off > 0) {
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
    if (b->len + extra <= b->cap) return;
  }
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra) cap *= 2;
  b->p = realloc(b->p, cap);
  if (!b->p) die("realloc");
  b->cap = cap;
}

static inline void buf_append(buf_t *b, const void *data, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static inline void buf_consume(buf_t *b, size_t n) {
  b->off += n;
  if (b->off >= b->len) b->off = b->len = 0;
}

static inline size_t buf_avail(const buf_t *b) { return b->len - b->off; }

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Appends a frame header for a payload of `n` bytes; masked when mask != NULL. */
static inline void ws_header(buf_t *b, uint8_t opcode, size_t n, const uint8_t *mask) {
  uint8_t h[14];
  size_t hl = 2;
  h[0] = 0x80 | opcode;
  uint8_t m = mask ? 0x80 : 0;
  if (n < 126) {
    h[1] = m | (uint8_t)n;
  } else if (n < 65536) {
    h[1] = m | 126;
    h[2] = (uint8_t)(n >> 8);
    h[3] = (uint8_t)n;
    hl = 4;
  } else {
    h[1] = m | 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    hl = 10;
  }
  if (mask) {
    memcpy(h + hl, mask, 4);
    hl += 4;
  }
  buf_append(b, h, hl);
}

/* Appends a whole frame; the client masks (RFC 6455 5.3), the server does not. */
static inline void ws_frame(buf_t *b, uint8_t opcode, const void *payload, size_t n, const uint8_t *mask) {
  ws_header(b, opcode, n, mask);
  buf_reserve(b, n);
  uint8_t *dst = b->p + b->len;
  memcpy(dst, payload, n);
  if (mask)
    for (size_t i = 0; i < n; i++) dst[i] ^= mask[i & 3];
  b->len += n;
}

/*
 * Parses one frame at the front of `b` without consuming it. Returns the
 * frame's total size, 0 if more bytes are needed, or -1 on a malformed frame.
 * The payload is unmasked in place.
 */
static inline long ws_parse(buf_t *b, uint8_t *fin, uint8_t *opcode, uint8_t **payload, size_t *plen) {
  size_t avail = buf_avail(b);
  uint8_t *p = b->p + b->off;
  if (avail < 2) return 0;
  *fin = p[0] & 0x80;
  *opcode = p[0] & 0x0f;
  int masked = p[1] & 0x80;
  uint64_t n = p[1] & 0x7f;
  size_t hl = 2;
  if (n == 126) {
    if (avail < 4) return 0;
    n = ((uint64_t)p[2] << 8) | p[3];
    hl = 4;
  } else if (n == 127) {
    if (avail < 10) return 0;
    n = 0;
    for (int i = 0; i < 8; i++) n = (n << 8) | p[2 + i];
    hl = 10;
    if (n > (1u << 30)) return -1;
  }
  size_t mk = hl;
  if (masked) hl += 4;
  if (avail < hl + n) return 0;
  *payload = p + hl;
  *plen = (size_t)n;
  if (masked)
    for (size_t i = 0; i < n; i++) p[hl + i] ^= p[mk + (i & 3)];
  return (long)(hl + n);
}

/* memmem for short needles on a payload that is not NUL-terminated. */
static inline const uint8_t *find(const uint8_t *hay, size_t n, const char *needle) {
  return memmem(hay, n, needle, strlen(needle));
}

/* Process set-up both programs share: no SIGPIPE on a closed socket, die
 * with the parent (the benchmark), and as many descriptors as allowed. */
static inline void process_setup(void) {
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

#endif
