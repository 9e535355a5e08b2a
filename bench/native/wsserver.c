/*
 * wsserver: the "ideal" chat server, the machine's limit for this job. One
 * thread, epoll, a minimal HTTP upgrade and WebSocket framing, the same
 * protocol subset as the other servers (`/ws/<username>`, broadcast and
 * direct with the sender's echo) and a similar outgoing frame. Each event
 * loop turn appends frames to per-socket output buffers and then makes one
 * write() per socket that has something to send, so a burst of messages
 * costs one syscall per receiver rather than one per frame.
 *
 * PORT (default 0) is read from the environment; it listens on 127.0.0.1
 * and prints `wsserver listening on http://127.0.0.1:<port>` when ready.
 */
#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#define OUT_MAX (64u << 20) /* a reader this far behind is closed */
#define USERS_CAP 65536     /* open-addressing table; far above the 5,000 used */

/* ---- SHA-1 (FIPS 180-1), only for Sec-WebSocket-Accept ---- */
static uint32_t rol(uint32_t x, int n) { return x << n | x >> (32 - n); }

static void sha1(const uint8_t *msg, size_t len, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  uint8_t block[128];
  size_t full = len / 64 * 64, rest = len - full;
  memset(block, 0, sizeof block);
  memcpy(block, msg + full, rest);
  block[rest] = 0x80;
  size_t tail = rest < 56 ? 64 : 128;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++) block[tail - 1 - i] = (uint8_t)(bits >> (8 * i));
  for (size_t off = 0; off < full + tail; off += 64) {
    const uint8_t *p = off < full ? msg + off : block + (off - full);
    uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    for (int i = 0; i < 80; i++) {
      uint32_t f, k;
      if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
      else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
      else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
      else f = b ^ c ^ d, k = 0xCA62C1D6;
      uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d, d = c, c = rol(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
  }
  for (int i = 0; i < 20; i++) out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const uint8_t *in, size_t n, char *out) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0, k = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[k++] = t[v >> 18 & 63], out[k++] = t[v >> 12 & 63], out[k++] = t[v >> 6 & 63], out[k++] = t[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
    out[k++] = t[v >> 18 & 63], out[k++] = t[v >> 12 & 63];
    out[k++] = i + 1 < n ? t[v >> 6 & 63] : '=';
    out[k++] = '=';
  }
  out[k] = 0;
}

/* ---- connections and users ---- */
typedef struct user user_t;
typedef struct conn {
  int fd, open, dirty, want_out, all_idx, user_idx;
  user_t *user;
  buf_t in, out;
} conn_t;

struct user {
  char name[65];
  conn_t **conns;
  int n, cap;
};

static user_t users[USERS_CAP];
static conn_t **all, **dirty;
static int nall, ndirty, capall;
static int ep;
static uint64_t next_id;

static uint32_t hash(const char *s, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
  return h;
}

/* Finds (or, with create, makes) the user slot for a name. */
static user_t *user_get(const char *s, size_t n, int create) {
  for (uint32_t i = hash(s, n) & (USERS_CAP - 1);; i = (i + 1) & (USERS_CAP - 1)) {
    user_t *u = &users[i];
    if (!u->name[0]) {
      if (!create) return NULL;
      memcpy(u->name, s, n);
      u->name[n] = 0;
      return u;
    }
    if (strlen(u->name) == n && !memcmp(u->name, s, n)) return u;
  }
}

static void mark_dirty(conn_t *c) {
  if (!c->dirty) c->dirty = 1, dirty[ndirty++] = c;
}

static void grow_lists(void) {
  if (nall < capall) return;
  capall = capall ? capall * 2 : 1024;
  all = realloc(all, sizeof *all * (size_t)capall);
  dirty = realloc(dirty, sizeof *dirty * (size_t)capall * 2); /* closes and opens in one turn */
  if (!all || !dirty) die("realloc");
}

static void conn_close(conn_t *c) {
  if (c->fd < 0) return;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  if (c->open) {
    all[c->all_idx] = all[--nall];
    all[c->all_idx]->all_idx = c->all_idx;
    user_t *u = c->user;
    u->conns[c->user_idx] = u->conns[--u->n];
    u->conns[c->user_idx]->user_idx = c->user_idx;
  }
  c->open = 0;
  free(c->in.p), free(c->out.p);
  memset(&c->in, 0, sizeof c->in), memset(&c->out, 0, sizeof c->out);
  /* The struct itself is kept (a few dozen bytes): it may still be on the dirty list. */
}

static int valid_name(const char *s, size_t n) {
  if (n < 1 || n > 64) return 0;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-')) return 0;
  }
  return 1;
}

static void reply_400(conn_t *c) {
  const char *r = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  if (write(c->fd, r, strlen(r)) < 0) { /* closing anyway */ }
  conn_close(c);
}

/* Handles the upgrade request once its headers are complete. */
static void on_http(conn_t *c) {
  uint8_t *start = c->in.p + c->in.off;
  const uint8_t *end = find(start, buf_avail(&c->in), "\r\n\r\n");
  if (!end) {
    if (buf_avail(&c->in) > 8192) reply_400(c);
    return;
  }
  size_t hl = (size_t)(end - start) + 4;
  char req[8200];
  memcpy(req, start, hl);
  req[hl] = 0;
  buf_consume(&c->in, hl);
  if (strncmp(req, "GET /ws/", 8) != 0) return reply_400(c);
  char *name = req + 8, *sp = strchr(name, ' '), *q = strpbrk(name, "? ");
  size_t nl = (size_t)(q - name);
  char *key = strcasestr(req, "\r\nSec-WebSocket-Key:");
  if (!sp || !key || !valid_name(name, nl)) return reply_400(c);
  key += 20;
  while (*key == ' ') key++;
  char *kend = strstr(key, "\r\n");
  char src[128], acc[64];
  size_t kl = (size_t)(kend - key);
  if (kl > 60) return reply_400(c);
  memcpy(src, key, kl);
  memcpy(src + kl, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
  uint8_t digest[20];
  sha1((uint8_t *)src, kl + 36, digest);
  base64(digest, 20, acc);
  char resp[256];
  int rn = snprintf(resp, sizeof resp,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Accept: %s\r\n\r\n", acc);
  user_t *u = user_get(name, nl, 1);
  if (u->n == u->cap) {
    u->cap = u->cap ? u->cap * 2 : 2;
    u->conns = realloc(u->conns, sizeof *u->conns * (size_t)u->cap);
    if (!u->conns) die("realloc");
  }
  c->user = u;
  c->user_idx = u->n;
  u->conns[u->n++] = c;
  grow_lists();
  c->all_idx = nall;
  all[nall++] = c;
  c->open = 1;
  buf_append(&c->out, resp, (size_t)rn);
  mark_dirty(c);
}

/* Returns the raw (still JSON-escaped) string value of "key", or NULL. */
static const uint8_t *json_str(const uint8_t *p, size_t n, const char *key, size_t *len) {
  const uint8_t *k = find(p, n, key);
  if (!k) return NULL;
  const uint8_t *s = k + strlen(key), *e = p + n;
  while (s < e && (*s == ' ' || *s == ':')) s++;
  if (s >= e || *s != '"') return NULL;
  const uint8_t *v = ++s;
  while (s < e && *s != '"') s += *s == '\\' ? 2 : 1;
  if (s >= e) return NULL;
  *len = (size_t)(s - v);
  return v;
}

static void deliver(user_t *u, const buf_t *frame) {
  for (int i = 0; i < u->n; i++) {
    buf_append(&u->conns[i]->out, frame->p, frame->len);
    mark_dirty(u->conns[i]);
  }
}

static void on_message(conn_t *c, const uint8_t *p, size_t n) {
  static buf_t json, frame;
  size_t tl, tol = 0;
  const uint8_t *text = json_str(p, n, "\"text\"", &tl), *to = NULL;
  int direct = find(p, n, "\"direct\"") != NULL;
  if (!text || tl > 4096) return;
  if (direct) {
    to = json_str(p, n, "\"to\"", &tol);
    if (!to || !valid_name((const char *)to, tol)) return;
  } else if (!find(p, n, "\"broadcast\"")) return;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  long long at = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
  json.len = json.off = 0;
  buf_reserve(&json, tl + 256);
  int jn;
  if (direct)
    jn = snprintf((char *)json.p, json.cap, "{\"type\":\"message\",\"id\":%llu,\"kind\":\"direct\",\"from\":\"%s\",\"to\":\"%.*s\",\"text\":\"%.*s\",\"at\":%lld}",
                  (unsigned long long)++next_id, c->user->name, (int)tol, to, (int)tl, text, at);
  else
    jn = snprintf((char *)json.p, json.cap, "{\"type\":\"message\",\"id\":%llu,\"kind\":\"broadcast\",\"from\":\"%s\",\"text\":\"%.*s\",\"at\":%lld}",
                  (unsigned long long)++next_id, c->user->name, (int)tl, text, at);
  /* Frame once, copy the bytes to every receiver. */
  frame.len = frame.off = 0;
  ws_frame(&frame, 1, json.p, (size_t)jn, NULL);
  if (!direct) {
    for (int i = 0; i < nall; i++) {
      buf_append(&all[i]->out, frame.p, frame.len);
      mark_dirty(all[i]);
    }
    return;
  }
  user_t *target = user_get((const char *)to, tol, 0);
  if (target) deliver(target, &frame);
  if (target != c->user) deliver(c->user, &frame);
}

static void on_frames(conn_t *c) {
  for (;;) {
    uint8_t fin, op, *pl;
    size_t n;
    long total = ws_parse(&c->in, &fin, &op, &pl, &n);
    if (total == 0) return;
    if (total < 0 || !fin) return conn_close(c); /* clients here never fragment */
    if (op == 1) on_message(c, pl, n);
    else if (op == 9) ws_frame(&c->out, 10, pl, n, NULL), mark_dirty(c);
    else if (op == 8) return conn_close(c);
    buf_consume(&c->in, (size_t)total);
    if (c->fd < 0) return;
  }
}

static void on_readable(conn_t *c) {
  buf_reserve(&c->in, 65536);
  ssize_t r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
  if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return conn_close(c);
  if (r < 0) return;
  c->in.len += (size_t)r;
  if (!c->open) on_http(c);
  if (c->fd >= 0 && c->open) on_frames(c);
}

static void flush_conn(conn_t *c) {
  c->dirty = 0;
  if (c->fd < 0) return;
  if (buf_avail(&c->out) > OUT_MAX) return conn_close(c);
  while (buf_avail(&c->out) > 0) {
    ssize_t w = write(c->fd, c->out.p + c->out.off, buf_avail(&c->out));
    if (w > 0) buf_consume(&c->out, (size_t)w);
    else if (w < 0 && errno == EINTR) continue;
    else if (w < 0 && errno == EAGAIN) break;
    else return conn_close(c);
  }
  int want = buf_avail(&c->out) > 0;
  if (want != c->want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
  }
}

int main(void) {
  process_setup();
  const char *port_env = getenv("PORT");
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(port_env ? atoi(port_env) : 0))};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 4096) < 0) die("listen");
  socklen_t al = sizeof addr;
  getsockname(lfd, (struct sockaddr *)&addr, &al);
  ep = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  grow_lists();
  printf("wsserver listening on http://127.0.0.1:%d\n", ntohs(addr.sin_port));
  fflush(stdout);

  struct epoll_event evs[512];
  for (;;) {
    int ne = epoll_wait(ep, evs, 512, -1);
    for (int i = 0; i < ne; i++) {
      conn_t *c = evs[i].data.ptr;
      if (!c) {
        for (int k = 0; k < 256; k++) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn_t *nc = calloc(1, sizeof *nc);
          if (!nc) die("calloc");
          nc->fd = fd;
          struct epoll_event ev = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      if (c->fd < 0) continue;
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
      if (c->fd >= 0 && (evs[i].events & EPOLLOUT)) mark_dirty(c);
    }
    /* One write per socket that has output, after the whole batch of events. */
    int nd = ndirty;
    ndirty = 0;
    for (int i = 0; i < nd; i++) flush_conn(dirty[i]);
  }
}
