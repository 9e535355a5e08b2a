/*
 * wsload: the benchmark's WebSocket load client. One thread, epoll, N
 * connections to a loopback server; it speaks plain WebSocket (wirechat and
 * the baselines) or Engine.IO v4 / Socket.IO v5 over WebSocket (--sio).
 *
 * Modes:
 *   broadcast, direct  closed loop: every connection keeps at most --window
 *                      of its own messages outstanding (sent, not yet echoed
 *                      back to it), for --warmup then --duration seconds, then
 *                      stops sending and drains. Deliveries are counted
 *                      exactly: a broadcast must reach all N connections, a
 *                      direct message its target and the sender's echo.
 *   idle               connects N, waits until the server falls quiet, prints
 *                      a "ready" line and holds the connections (answering
 *                      pings) until killed or --hold seconds pass. The ready
 *                      line counts every byte the server sent (rx_bytes:
 *                      upgrade responses, welcome and presence frames), for
 *                      the connect storm.
 *   latency            open loop: direct messages from u<i> to u<i+1> at
 *                      --rate a second in all (--warmup-rate during the
 *                      warm-up), round robin over the connections, never
 *                      waiting for replies, so a slow server shows as latency
 *                      rather than as a lower rate. Each text carries its send
 *                      time (µs since the client started); the receiver
 *                      subtracts it from the time its read returned. Every
 *                      text is 16 characters ("#0012 03041234.5"), whatever
 *                      the machine's uptime: JavaScriptCore's JSON.parse
 *                      interns string values of up to 16 characters, as a
 *                      short chat text is, and with the absolute clock the
 *                      texts grew past that once the machine had been up
 *                      2.8 hours. Messages sent after
 *                      the warm-up are timed at their receiver (the sender's
 *                      echo is counted, not timed); the result gives p50,
 *                      p99 and max in ms, and p90, p95, p98 and p99.5 to show
 *                      where the tail begins. --cids puts a fresh UUID-shaped
 *                      cid on every message, as the SDK does; --paired
 *                      connects the odd-numbered connections with ?batch=1
 *                      and the others without, and reports p50/p99 per
 *                      receiver mode too.
 *                      In C, like the load: a client in a garbage-collected
 *                      runtime added its own pauses to every figure.
 *
 * Several servers (a cluster): --ports P1,P2,... sends connection i to port
 * i % k, so with two ports a direct message from u<i> to u<i+1> always
 * crosses nodes. --senders-on J lets only the connections of port index J
 * send (all of them receive); deliveries whose receiver is on another port
 * than their sender are counted apart (cross_delivered). --sources K binds
 * connection i to source address 127.0.0.<1 + i % K> (still loopback), so
 * more connections than one address has ephemeral ports can be opened.
 * --ready-on-frame counts a connection as connected only once its first
 * frame (wirechat's welcome) has arrived, not at the 101. --query Q is
 * appended to every connection's path (`?batch=1`: wirechat then coalesces
 * frames into JSON arrays, and every message inside an array is counted).
 *
 * With --tokens FILE (line i: the token of u<i>) the upgrade request of
 * connection i carries `Authorization: Bearer <token>`, for a server that
 * checks identity (wirechat with AUTH=jwt); the tokens are signed by the
 * benchmark runner, so this client has no JWT code. Without it no such header
 * is sent. --first-user K names connection i u<K+i> (and takes line K+i of
 * the token file) and marks its messages `#<K+i>`: on a second run against a
 * server that keeps history, the users are new (no inbox to replay) and the
 * recent broadcasts it replays for context, marked below K, are not counted.
 *
 * Output is JSON lines on stdout: {"event":"measure_start"} when the measured
 * window begins (the orchestrator samples the server's CPU then) and a final
 * {"event":"result",...}. A deliveries frame is recognised by the marker
 * `"text":"#<sender index>` that only this client's messages carry, so
 * welcome, presence and ack frames are never counted.
 */
#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

enum { ST_NEW, ST_CONNECTING, ST_HTTP, ST_SIO_OPEN, ST_SIO_CONNECT, ST_WELCOME, ST_READY, ST_CLOSED };
enum { M_BROADCAST, M_DIRECT, M_IDLE, M_LATENCY };
enum { P_CONNECT, P_WARMUP, P_WDRAIN, P_MEASURE, P_MDRAIN, P_HOLD, P_DONE };

typedef struct {
  int fd, idx, pi, state, tries; /* pi: index of its port in --ports */
  buf_t in, out, frag;
  uint8_t frag_op;
  int outstanding;
  int dirty, want_out;
} conn_t;

#define MAX_PORTS 16

static struct {
  const char *host;
  int port, n, mode, sio, window;
  double warmup, duration, drain, hold, connect_timeout;
  const char *prefix, *pad, *tokens, *query;
  int ports[MAX_PORTS], nports, senders_on, sources, ready_on_frame, first_user;
  double rate, warmup_rate; /* latency mode: messages a second, all connections together (warm-up: warmup_rate, default rate) */
  int cids, paired;
} opt = {"127.0.0.1", 0, 64, M_BROADCAST, 0, 1, 1.0, 3.0, 5.0, 30.0, 60.0, "/ws/", "lorem ipsum dolor sit amet", NULL, "",
         {0}, 0, -1, 1, 0, 0, 2000, 0, 0, 0};

static conn_t *conns;
static int ep, ready_count, pending, next_connect, closed_count;
static conn_t **dirty;
static int ndirty;
static uint64_t sent, delivered, expected, cross_delivered, rx_bytes;
static double last_rx, last_delivery;
static int got_delivery; /* set per frame, turned into a timestamp once per read */
static uint32_t rng = 2463534242u;
static char error_msg[256];
static struct sockaddr_in addrs[MAX_PORTS];
static char **tokens; /* tokens[i]: bearer token of u<i>; NULL without --tokens */
/* Latency mode: one sample (µs) per message sent in the measured window, at its receiver; split by the receiver's mode with --paired. */
typedef struct {
  double *v;
  size_t n, cap;
} samples_t;
static samples_t lat_all, lat_batch, lat_plain;
static double measure_from = 1e300; /* send times (µs since the start) from here on are timed */
static uint64_t measured_sent;      /* messages sent at or after measure_from: the achieved rate's numerator */
static double started_s;             /* now_s() when the client started */
/* The latency text: sender and send time, 16 characters for senders below u10000 in runs under 100 s. */
#define LATENCY_TEXT "#%04d %010.1f"

/* µs from the client's start to `t` (seconds of now_s()). */
static double since_start_us(double t) { return (t - started_s) * 1e6; }

static void sample_add(samples_t *s, double v) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 65536;
    if (!(s->v = realloc(s->v, s->cap * sizeof *s->v))) die("realloc");
  }
  s->v[s->n++] = v;
}

static uint32_t xorshift(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

static void fail_msg(const char *m) {
  if (!error_msg[0]) snprintf(error_msg, sizeof error_msg, "%s", m);
}

static void mark_dirty(conn_t *c) {
  if (!c->dirty) {
    c->dirty = 1;
    dirty[ndirty++] = c;
  }
}

static void send_text(conn_t *c, const char *s, size_t n) {
  uint32_t m = xorshift();
  ws_frame(&c->out, 1, s, n, (uint8_t *)&m);
  mark_dirty(c);
}

static void close_conn(conn_t *c, const char *why) {
  if (c->state == ST_CLOSED) return;
  if (c->state < ST_READY || (c->state == ST_READY && why)) {
    char m[200];
    snprintf(m, sizeof m, "connection u%d: %s", opt.first_user + c->idx, why ? why : "closed");
    fail_msg(m);
  }
  if (c->state == ST_READY) ready_count--;
  if (c->state > ST_NEW && c->state < ST_READY) pending--;
  c->state = ST_CLOSED;
  closed_count++;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
}

static void start_connect(conn_t *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (opt.sources > 1) {
    /* Source 127.0.0.<1 + i % K>; the port is picked at connect(), per destination. */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->idx % opt.sources))};
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) die("bind source address");
  }
  c->fd = fd;
  c->state = ST_CONNECTING;
  c->tries++;
  pending++;
  if (connect(fd, (struct sockaddr *)&addrs[c->pi], sizeof addrs[c->pi]) < 0 && errno != EINPROGRESS) die("connect");
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  c->want_out = 1;
}

static void became_ready(conn_t *c) {
  c->state = ST_READY;
  ready_count++;
  pending--;
}

/* Builds the next message of connection c and queues it. */
static void send_message(conn_t *c) {
  char msg[512];
  int n, i = opt.first_user + c->idx, to = opt.first_user + (c->idx + 1) % opt.n;
  if (opt.mode == M_BROADCAST)
    n = opt.sio ? snprintf(msg, sizeof msg, "42[\"broadcast\",{\"text\":\"#%d %s\"}]", i, opt.pad)
                : snprintf(msg, sizeof msg, "{\"type\":\"broadcast\",\"text\":\"#%d %s\"}", i, opt.pad);
  else if (opt.mode == M_LATENCY) {
    /* The send time in µs of this client's clock, to 0.1 µs as printed: the receiver parses back exactly this value. */
    double us = (double)(int64_t)(since_start_us(now_s()) * 10 + 0.5) / 10;
    if (us >= measure_from) measured_sent++;
    if (opt.sio) n = snprintf(msg, sizeof msg, "42[\"direct\",{\"to\":\"u%d\",\"text\":\"" LATENCY_TEXT "\"}]", to, i, us);
    else if (opt.cids) {
      /* A fresh cid on every message, UUID-shaped like the SDK's: the server acks and remembers each. */
      uint32_t a = xorshift(), b = xorshift(), c2 = xorshift(), d = xorshift();
      n = snprintf(msg, sizeof msg, "{\"type\":\"direct\",\"to\":\"u%d\",\"text\":\"" LATENCY_TEXT "\",\"cid\":\"%08x-%04x-4%03x-a%03x-%04x%08x\"}", to, i, us,
                   a, b >> 16, b & 0xfff, c2 >> 20, c2 & 0xffff, d);
    } else n = snprintf(msg, sizeof msg, "{\"type\":\"direct\",\"to\":\"u%d\",\"text\":\"" LATENCY_TEXT "\"}", to, i, us);
  } else
    n = opt.sio ? snprintf(msg, sizeof msg, "42[\"direct\",{\"to\":\"u%d\",\"text\":\"#%d %s\"}]", to, i, opt.pad)
                : snprintf(msg, sizeof msg, "{\"type\":\"direct\",\"to\":\"u%d\",\"text\":\"#%d %s\"}", to, i, opt.pad);
  send_text(c, msg, (size_t)n);
  c->outstanding++;
  sent++;
  expected += opt.mode == M_BROADCAST ? (uint64_t)opt.n : 2;
}

/*
 * Counts every message of this client in one text frame: one for a plain
 * frame, several for a coalesced one (a JSON array of frames, `?batch=1`).
 * memchr is much cheaper than memmem; the '#' then confirms the key.
 */
static void count_delivery(conn_t *c, const uint8_t *p, size_t n) {
  const uint8_t *end = p + n, *m = memchr(p, '#', n);
  while (m) {
    if (m - p >= 8 && memcmp(m - 8, "\"text\":\"", 8) == 0) {
      m++;
      int from = 0;
      while (m < end && *m >= '0' && *m <= '9') from = from * 10 + (*m++ - '0');
      from -= opt.first_user;
      /* Below --first-user: an earlier run's message, replayed for context, not one of ours. */
      if (opt.first_user == 0 || from >= 0) {
        delivered++;
        got_delivery = 1;
        if (from == c->idx) c->outstanding--;
        else if (from >= 0 && from < opt.n && conns[from].pi != c->pi) cross_delivered++;
        if (opt.mode == M_LATENCY && from != c->idx && m < end && *m == ' ') {
          /* The sender's echo is counted, not timed: the receiver's copy is. */
          double at = strtod((const char *)m + 1, NULL);
          if (at >= measure_from) {
            double us = since_start_us(last_rx) - at; /* last_rx: when the read holding this frame returned */
            sample_add(&lat_all, us);
            if (opt.paired) sample_add(c->idx % 2 ? &lat_batch : &lat_plain, us);
          }
        }
      }
    } else {
      m++;
    }
    m = m < end ? memchr(m, '#', (size_t)(end - m)) : NULL;
  }
}

static void on_text(conn_t *c, uint8_t *p, size_t n) {
  if (!opt.sio) {
    /* An error frame is a refused message: the run fails with the server's words, not only as a loss. */
    if (((n >= 15 && !memcmp(p, "{\"type\":\"error\"", 15)) || (n >= 16 && !memcmp(p, "[{\"type\":\"error\"", 16)))) {
      char m[240];
      snprintf(m, sizeof m, "u%d: the server answered with %.*s", opt.first_user + c->idx, (int)(n < 200 ? n : 200), (const char *)p);
      fail_msg(m);
    }
    count_delivery(c, p, n);
    return;
  }
  /* Engine.IO packet type is the first byte; Socket.IO's follows it. */
  if (n >= 1 && p[0] == '0' && c->state == ST_SIO_OPEN) {
    send_text(c, "40", 2);
    c->state = ST_SIO_CONNECT;
  } else if (n >= 2 && p[0] == '4' && p[1] == '0' && c->state == ST_SIO_CONNECT) {
    became_ready(c);
  } else if (n == 1 && p[0] == '2') {
    send_text(c, "3", 1);
  } else if (n >= 2 && p[0] == '4' && p[1] == '2') {
    count_delivery(c, p, n);
  } else if (n >= 2 && p[0] == '4' && p[1] == '4') {
    close_conn(c, "socket.io connect_error");
  } else if (n >= 1 && p[0] == '1') {
    close_conn(c, "engine.io close");
  }
}

static void process_input(conn_t *c) {
  if (c->state == ST_HTTP) {
    const uint8_t *end = find(c->in.p + c->in.off, buf_avail(&c->in), "\r\n\r\n");
    if (!end) return;
    if (buf_avail(&c->in) < 12 || memcmp(c->in.p + c->in.off + 9, "101", 3) != 0) {
      /* Name the status (401 is a bad token, 429 a limit) in the error. */
      char why[64];
      const uint8_t *eol = find(c->in.p + c->in.off, buf_avail(&c->in), "\r\n");
      snprintf(why, sizeof why, "upgrade refused: %.*s", (int)(eol - (c->in.p + c->in.off)), (const char *)(c->in.p + c->in.off));
      close_conn(c, why);
      return;
    }
    buf_consume(&c->in, (size_t)(end + 4 - (c->in.p + c->in.off)));
    if (opt.sio) c->state = ST_SIO_OPEN;
    else if (opt.ready_on_frame) c->state = ST_WELCOME;
    else became_ready(c);
  }
  for (;;) {
    uint8_t fin, op, *pl;
    size_t n;
    long total = ws_parse(&c->in, &fin, &op, &pl, &n);
    if (total == 0) break;
    if (total < 0) {
      close_conn(c, "malformed frame");
      return;
    }
    if (op == 9) {
      uint32_t m = xorshift();
      ws_frame(&c->out, 10, pl, n, (uint8_t *)&m);
      mark_dirty(c);
    } else if (op == 8) {
      buf_consume(&c->in, (size_t)total);
      close_conn(c, "server sent close");
      return;
    } else if (op == 0 || op == 1 || op == 2) {
      if (op != 0) c->frag_op = op;
      if (!fin || c->frag.len > 0) {
        /* Fragmented message: gather the pieces and handle it once whole. */
        buf_append(&c->frag, pl, n);
        if (fin) {
          if (c->frag_op == 1) on_text(c, c->frag.p, c->frag.len);
          c->frag.len = c->frag.off = 0;
        }
      } else if (op == 1) {
        if (c->state == ST_WELCOME) became_ready(c);
        on_text(c, pl, n);
      }
    }
    buf_consume(&c->in, (size_t)total);
    if (c->state == ST_CLOSED) return;
  }
}

static void on_readable(conn_t *c) {
  for (int i = 0; i < 4; i++) {
    buf_reserve(&c->in, 65536);
    ssize_t r = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
    if (r > 0) {
      c->in.len += (size_t)r;
      rx_bytes += (uint64_t)r;
      last_rx = now_s();
      process_input(c);
      if (got_delivery) last_delivery = last_rx, got_delivery = 0;
      if (c->state == ST_CLOSED) return;
      if ((size_t)r < 65536) return;
    } else if (r == 0) {
      close_conn(c, "server closed the TCP connection");
      return;
    } else {
      if (errno != EAGAIN && errno != EINTR) close_conn(c, strerror(errno));
      return;
    }
  }
}

static void flush_conn(conn_t *c) {
  c->dirty = 0;
  if (c->state == ST_CLOSED || c->state == ST_CONNECTING) return;
  while (buf_avail(&c->out) > 0) {
    ssize_t w = write(c->fd, c->out.p + c->out.off, buf_avail(&c->out));
    if (w > 0) {
      buf_consume(&c->out, (size_t)w);
    } else if (w < 0 && errno == EAGAIN) {
      break;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else {
      close_conn(c, "write failed");
      return;
    }
  }
  int want = buf_avail(&c->out) > 0;
  if (want != c->want_out) {
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
  }
}

static void on_connected(conn_t *c) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    /* A refused connect under a burst of thousands is retried a few times. */
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    pending--;
    if (c->tries >= 5) {
      c->state = ST_CLOSED;
      closed_count++;
      fail_msg(strerror(err));
      return;
    }
    start_connect(c);
    return;
  }
  char req[512];
  uint8_t key[16];
  char key64[32];
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 16; i++) key[i] = (uint8_t)xorshift();
  int k = 0;
  for (int i = 0; i < 15; i += 3) {
    uint32_t v = (uint32_t)key[i] << 16 | (uint32_t)key[i + 1] << 8 | key[i + 2];
    key64[k++] = b64[v >> 18 & 63], key64[k++] = b64[v >> 12 & 63];
    key64[k++] = b64[v >> 6 & 63], key64[k++] = b64[v & 63];
  }
  uint32_t v = (uint32_t)key[15] << 16;
  key64[k++] = b64[v >> 18 & 63], key64[k++] = b64[v >> 12 & 63];
  key64[k++] = '=', key64[k++] = '=', key64[k] = 0;
  int n = opt.sio ? snprintf(req, sizeof req, "GET /socket.io/?EIO=4&transport=websocket&username=u%d HTTP/1.1\r\n", opt.first_user + c->idx)
                  : snprintf(req, sizeof req, "GET %su%d%s HTTP/1.1\r\n", opt.prefix, opt.first_user + c->idx,
                             opt.paired ? (c->idx % 2 ? "?batch=1" : "") : opt.query);
  n += snprintf(req + n, sizeof req - (size_t)n,
                "Host: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                opt.host, opt.ports[c->pi], key64);
  buf_append(&c->out, req, (size_t)n);
  /* Appended, not formatted into req: a token's length is the server's business. */
  if (tokens) {
    buf_append(&c->out, "Authorization: Bearer ", 22);
    buf_append(&c->out, tokens[c->idx], strlen(tokens[c->idx]));
    buf_append(&c->out, "\r\n", 2);
  }
  buf_append(&c->out, "\r\n", 2);
  c->state = ST_HTTP;
  flush_conn(c);
}

/*
 * A drain gives up when no delivery has arrived for --drain seconds (lost
 * messages never come) or after 120 s in all; a slow server that is still
 * delivering its queued backlog is given the time it needs.
 */
static int drain_stalled(double t, double drain_start) {
  double progress = last_delivery > drain_start ? last_delivery : drain_start;
  return t - progress > opt.drain || t - drain_start > 120;
}

/* Waits for events: 2 ms at most, or 0.1 ms in latency mode, whose schedule sends every message close to its time. */
static int wait_events(struct epoll_event *evs, int max) {
  if (opt.mode != M_LATENCY) return epoll_wait(ep, evs, max, 2);
  static int no_pwait2;
  struct timespec ts = {0, 100000};
  if (!no_pwait2) {
    int r = epoll_pwait2(ep, evs, max, &ts, NULL);
    if (r >= 0 || errno != ENOSYS) return r;
    no_pwait2 = 1; /* a kernel before 5.11: 1 ms turns */
  }
  return epoll_wait(ep, evs, max, 1);
}

/* Prints the error as a JSON value: null, or the message as a string (it may quote a server's frame). */
static void print_error_json(void) {
  if (!error_msg[0]) {
    fputs("null", stdout);
    return;
  }
  putchar('"');
  for (const unsigned char *q = (const unsigned char *)error_msg; *q; q++) {
    if (*q == '"' || *q == '\\') printf("\\%c", *q);
    else if (*q < 0x20) printf("\\u%04x", *q);
    else putchar(*q);
  }
  putchar('"');
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The p-th percentile of the samples in ms, sorting them (0 without samples). */
static double pct_ms(samples_t *s, double p) {
  if (!s->n) return 0;
  size_t i = (size_t)(p / 100 * (double)s->n);
  return s->v[i < s->n ? i : s->n - 1] / 1000;
}

static void sort_samples(samples_t *s) {
  if (s->n) qsort(s->v, s->n, sizeof *s->v, cmp_double);
}

static void usage(void) {
  fprintf(stderr,
          "usage: wsload --port P | --ports P1,P2,... [--host 127.0.0.1] [--n 64] [--mode broadcast|direct|idle] [--sio]\n"
          "              [--window K] [--warmup S] [--duration S] [--drain S (stall)] [--hold S] [--prefix /ws/] [--query ?batch=1]\n"
          "              [--tokens FILE (line i: bearer token of u<i>)] [--senders-on J (port index)]\n"
          "              [--mode latency --rate R [--warmup-rate R] [--cids] [--paired]]\n"
          "              [--sources K (127.0.0.1..K)] [--ready-on-frame] [--connect-timeout S] [--first-user K (u<K>..)]\n");
  exit(2);
}

/* Reads one token per line; the file must have a line for each of the n connections after the first --first-user. */
static void load_tokens(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) die(path);
  tokens = calloc((size_t)opt.n, sizeof *tokens);
  if (!tokens) die("calloc");
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int i = 0, skip = opt.first_user;
  while (i < opt.n && (len = getline(&line, &cap, f)) > 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
    if (len == 0) continue;
    if (skip > 0) {
      skip--;
      continue;
    }
    if (!(tokens[i++] = strdup(line))) die("strdup");
  }
  free(line);
  fclose(f);
  if (i < opt.n) {
    fprintf(stderr, "wsload: %s has %d tokens after the first %d, --n %d needs one per connection\n", path, i, opt.first_user, opt.n);
    exit(2);
  }
}

static void parse_args(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--sio")) { opt.sio = 1; continue; }
    if (!strcmp(a, "--ready-on-frame")) { opt.ready_on_frame = 1; continue; }
    if (!strcmp(a, "--cids")) { opt.cids = 1; continue; }
    if (!strcmp(a, "--paired")) { opt.paired = 1; continue; }
    if (!v) usage();
    i++;
    if (!strcmp(a, "--host")) opt.host = v;
    else if (!strcmp(a, "--port")) opt.ports[0] = atoi(v), opt.nports = 1;
    else if (!strcmp(a, "--ports")) {
      opt.nports = 0;
      for (const char *q = v; *q && opt.nports < MAX_PORTS; q = strchr(q, ',') ? strchr(q, ',') + 1 : q + strlen(q))
        opt.ports[opt.nports++] = atoi(q);
    }
    else if (!strcmp(a, "--senders-on")) opt.senders_on = atoi(v);
    else if (!strcmp(a, "--sources")) opt.sources = atoi(v);
    else if (!strcmp(a, "--connect-timeout")) opt.connect_timeout = atof(v);
    else if (!strcmp(a, "--n")) opt.n = atoi(v);
    else if (!strcmp(a, "--first-user")) opt.first_user = atoi(v);
    else if (!strcmp(a, "--window")) opt.window = atoi(v);
    else if (!strcmp(a, "--rate")) opt.rate = atof(v);
    else if (!strcmp(a, "--warmup-rate")) opt.warmup_rate = atof(v);
    else if (!strcmp(a, "--warmup")) opt.warmup = atof(v);
    else if (!strcmp(a, "--duration")) opt.duration = atof(v);
    else if (!strcmp(a, "--drain")) opt.drain = atof(v);
    else if (!strcmp(a, "--hold")) opt.hold = atof(v);
    else if (!strcmp(a, "--prefix")) opt.prefix = v;
    else if (!strcmp(a, "--tokens")) opt.tokens = v;
    else if (!strcmp(a, "--query")) opt.query = v;
    else if (!strcmp(a, "--mode")) {
      if (!strcmp(v, "broadcast")) opt.mode = M_BROADCAST;
      else if (!strcmp(v, "direct")) opt.mode = M_DIRECT;
      else if (!strcmp(v, "idle")) opt.mode = M_IDLE;
      else if (!strcmp(v, "latency")) opt.mode = M_LATENCY;
      else usage();
    } else usage();
  }
  if (opt.nports < 1 || opt.n < 1 || opt.window < 1 || opt.first_user < 0 || ((opt.mode == M_DIRECT || opt.mode == M_LATENCY) && opt.n < 2) || !(opt.rate > 0)) usage();
  if ((opt.cids || opt.paired) && (opt.mode != M_LATENCY || opt.sio)) usage();
  if (opt.paired && opt.query[0]) usage();
  if (opt.warmup_rate <= 0) opt.warmup_rate = opt.rate;
  if (opt.query[0] && (opt.query[0] != '?' || strlen(opt.query) > 200)) usage();
  if (opt.senders_on >= opt.nports || opt.sources < 1 || opt.sources > 254) usage();
  for (int k = 0; k < opt.nports; k++) {
    if (opt.ports[k] <= 0 || opt.ports[k] > 65535) usage();
    /* Load goes to this machine only. */
    if (inet_pton(AF_INET, opt.host, &addrs[k].sin_addr) != 1 || (ntohl(addrs[k].sin_addr.s_addr) >> 24) != 127) {
      fprintf(stderr, "wsload: --host must be a 127.x.x.x address\n");
      exit(2);
    }
    addrs[k].sin_family = AF_INET;
    addrs[k].sin_port = htons((uint16_t)opt.ports[k]);
  }
  opt.port = opt.ports[0];
  if (opt.tokens) load_tokens(opt.tokens);
}

int main(int argc, char **argv) {
  started_s = now_s();
  parse_args(argc, argv);
  process_setup();
  conns = calloc((size_t)opt.n, sizeof *conns);
  dirty = calloc((size_t)opt.n, sizeof *dirty);
  ep = epoll_create1(0);
  if (!conns || !dirty || ep < 0) die("setup");
  for (int i = 0; i < opt.n; i++) conns[i].idx = i, conns[i].pi = i % opt.nports;
  int senders = 0;
  for (int i = 0; i < opt.n; i++) senders += opt.senders_on < 0 || conns[i].pi == opt.senders_on;

  const char *mode_name = opt.mode == M_BROADCAST ? "broadcast" : opt.mode == M_DIRECT ? "direct" : opt.mode == M_IDLE ? "idle" : "latency";
  double sched_start = 0; /* latency mode: when the open-loop schedule began */
  uint64_t scheduled = 0;
  int phase = P_CONNECT;
  double t0 = now_s(), phase_start = t0, connect_s = 0, measure_start = 0;
  uint64_t warm_sent = 0, warm_lost = 0;
  struct epoll_event evs[512];

  while (phase != P_DONE) {
    int ne = wait_events(evs, 512);
    for (int i = 0; i < ne; i++) {
      conn_t *c = evs[i].data.ptr;
      if (c->state == ST_CLOSED) continue;
      if (c->state == ST_CONNECTING) {
        if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) on_connected(c);
        continue;
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
      if (c->state != ST_CLOSED && (evs[i].events & EPOLLOUT)) mark_dirty(c);
    }
    double t = now_s();
    int sending = phase == P_WARMUP || phase == P_MEASURE;
    switch (phase) {
    case P_CONNECT:
      /* At most 256 handshakes in flight so the listen backlog never overflows. */
      while (pending < 256 && next_connect < opt.n) start_connect(&conns[next_connect++]);
      if (error_msg[0]) phase = P_DONE;
      else if (t - t0 > opt.connect_timeout) { fail_msg("timed out connecting"); phase = P_DONE; }
      else if (ready_count == opt.n) {
        if (!connect_s) connect_s = t - t0;
        if (opt.mode == M_IDLE) {
          /* Wait for the server's join/presence chatter to stop first. */
          if (t - last_rx >= 0.5) {
            printf("{\"event\":\"ready\",\"connected\":%d,\"connect_s\":%.3f,\"quiet_s\":%.3f,\"rx_bytes\":%llu}\n",
                   ready_count, connect_s, last_rx - t0, (unsigned long long)rx_bytes);
            fflush(stdout);
            phase = P_HOLD;
            phase_start = t;
          }
        } else if (opt.mode == M_LATENCY) {
          /* Open loop from here: the schedule never waits for replies, so a slow server shows as latency. */
          if (t - last_rx >= 0.2) {
            phase = P_WARMUP;
            phase_start = sched_start = t;
            measure_from = since_start_us(sched_start + opt.warmup);
          }
        } else {
          phase = opt.warmup > 0 ? P_WARMUP : P_MEASURE;
          phase_start = t;
          if (phase == P_MEASURE) goto measure;
        }
      }
      break;
    case P_WARMUP:
      if (opt.mode == M_LATENCY) {
        /* No drain between: messages sent from now on are timed. */
        if (t - phase_start >= opt.warmup) {
          measure_start = phase_start = t;
          phase = P_MEASURE;
          printf("{\"event\":\"measure_start\"}\n");
          fflush(stdout);
        }
      } else if (t - phase_start >= opt.warmup) { phase = P_WDRAIN; phase_start = t; sending = 0; }
      break;
    case P_WDRAIN:
      if (delivered > expected) {
        fail_msg("more deliveries than messages sent (stale or duplicate frames)");
        phase = P_DONE;
      } else if (delivered == expected) {
        warm_sent = sent;
      measure:
        sent = delivered = expected = cross_delivered = 0;
        measure_start = last_delivery = now_s();
        printf("{\"event\":\"measure_start\"}\n");
        fflush(stdout);
        phase = P_MEASURE;
        phase_start = measure_start;
        sending = 1;
      } else if (drain_stalled(t, phase_start)) {
        warm_lost = expected > delivered ? expected - delivered : 0;
        warm_sent = sent;
        sent = delivered = expected = 0;
        fail_msg("deliveries missing after the warm-up drain");
        phase = P_DONE;
      }
      break;
    case P_MEASURE:
      if (t - phase_start >= opt.duration) { phase = P_MDRAIN; phase_start = t; sending = 0; }
      break;
    case P_MDRAIN:
      if (delivered >= expected || drain_stalled(t, phase_start)) phase = P_DONE;
      if (delivered > expected) fail_msg("more deliveries than messages sent (stale or duplicate frames)");
      break;
    case P_HOLD:
      if (t - phase_start >= opt.hold) phase = P_DONE;
      break;
    }
    if (closed_count > 0 && phase != P_DONE) {
      fail_msg("a connection closed");
      phase = P_DONE;
    }
    /* Latency mode: the schedule runs to its last message even in the turn where the window closed. */
    if (opt.mode == M_LATENCY && sched_start > 0 && phase != P_DONE) {
      /* The schedule is a function of the time alone: a late turn sends what fell due meanwhile, each stamped when it goes. */
      double e = now_s() - sched_start, w = opt.warmup, d = opt.duration;
      /* Past the end: the whole schedule, rounded once (e - w would carry a rounding error into the last message). */
      uint64_t due = e >= w + d ? (uint64_t)(w * opt.warmup_rate + d * opt.rate + 0.5)
                                : (uint64_t)((e < w ? e : w) * opt.warmup_rate + (e > w ? e - w : 0) * opt.rate);
      for (; scheduled < due; scheduled++) {
        conn_t *c = &conns[scheduled % (uint64_t)opt.n];
        if (c->state == ST_READY) send_message(c);
      }
    } else if (sending && opt.mode != M_LATENCY)
      for (int i = 0; i < opt.n; i++) {
        conn_t *c = &conns[i];
        if (opt.senders_on >= 0 && c->pi != opt.senders_on) continue;
        while (c->state == ST_READY && c->outstanding < opt.window) send_message(c);
      }
    /* One write per socket per loop turn, like the ideal server. */
    int nd = ndirty;
    ndirty = 0;
    for (int i = 0; i < nd; i++) flush_conn(dirty[i]);
  }

  double elapsed = measure_start > 0 ? last_delivery - measure_start : 0;
  uint64_t lost = expected > delivered ? expected - delivered : 0;
  if (opt.mode == M_LATENCY) {
    if (delivered > expected) fail_msg("more deliveries than messages sent");
    sort_samples(&lat_all), sort_samples(&lat_batch), sort_samples(&lat_plain);
    if (lost) {
      char m[120];
      snprintf(m, sizeof m, "%llu deliveries missing after a %.0f s drain", (unsigned long long)lost, opt.drain);
      fail_msg(m);
    }
    printf("{\"event\":\"result\",\"mode\":\"latency\",\"sent\":%llu,\"delivered\":%llu,\"expected\":%llu,\"lost\":%llu,"
           "\"p50_ms\":%.4f,\"p90_ms\":%.4f,\"p95_ms\":%.4f,\"p98_ms\":%.4f,\"p99_ms\":%.4f,\"p995_ms\":%.4f,\"max_ms\":%.4f,\"samples\":%zu,\"achieved_rate\":%.1f,",
           (unsigned long long)sent, (unsigned long long)delivered, (unsigned long long)expected, (unsigned long long)lost,
           pct_ms(&lat_all, 50), pct_ms(&lat_all, 90), pct_ms(&lat_all, 95), pct_ms(&lat_all, 98), pct_ms(&lat_all, 99),
           pct_ms(&lat_all, 99.5), lat_all.n ? lat_all.v[lat_all.n - 1] / 1000 : 0, lat_all.n,
           (double)measured_sent / opt.duration);
    if (opt.paired)
      printf("\"p50_batch_ms\":%.4f,\"p99_batch_ms\":%.4f,\"samples_batch\":%zu,\"p50_plain_ms\":%.4f,\"p99_plain_ms\":%.4f,\"samples_plain\":%zu,",
             pct_ms(&lat_batch, 50), pct_ms(&lat_batch, 99), lat_batch.n, pct_ms(&lat_plain, 50), pct_ms(&lat_plain, 99), lat_plain.n);
    fputs("\"error\":", stdout);
    print_error_json();
    puts("}");
    fflush(stdout);
    return error_msg[0] || lost ? 1 : 0;
  }
  printf("{\"event\":\"result\",\"mode\":\"%s\",\"sio\":%s,\"n\":%d,\"ports\":%d,\"senders\":%d,\"window\":%d,\"connected\":%d,"
         "\"connect_s\":%.3f,\"warmup_sent\":%llu,\"warmup_lost\":%llu,\"sent\":%llu,\"delivered\":%llu,"
         "\"expected\":%llu,\"lost\":%llu,\"elapsed_s\":%.4f,\"deliveries_per_s\":%.1f,\"messages_per_s\":%.1f,"
         "\"cross_delivered\":%llu,\"cross_deliveries_per_s\":%.1f,\"rx_bytes\":%llu,"
         "\"error\":",
         mode_name, opt.sio ? "true" : "false", opt.n, opt.nports, senders, opt.window, ready_count, connect_s,
         (unsigned long long)warm_sent, (unsigned long long)warm_lost, (unsigned long long)sent,
         (unsigned long long)delivered, (unsigned long long)expected, (unsigned long long)lost, elapsed,
         elapsed > 0 ? (double)delivered / elapsed : 0, elapsed > 0 ? (double)sent / elapsed : 0,
         (unsigned long long)cross_delivered, elapsed > 0 ? (double)cross_delivered / elapsed : 0, (unsigned long long)rx_bytes);
  print_error_json();
  puts("}");
  fflush(stdout);
  return error_msg[0] || lost || warm_lost ? 1 : 0;
}
