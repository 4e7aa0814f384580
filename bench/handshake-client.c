/*
 * Full TLS 1.3 handshakes as fast as one core allows, for `npm run bench` (bench/handshake.ts).
 *
 * Every handshake is a fresh TCP connection with SNI and no session resumption (no session
 * cache, no tickets, no session set). Optionally a PROXY protocol v1 header goes first, as the
 * NLB sends it. After the handshake the client sends close_notify and waits for the server to
 * close (so the client never holds TIME_WAIT ports). `--in-flight` connections run at once on
 * one thread (epoll). Compiled at bench time: gcc -O2 handshake-client.c -lssl -lcrypto.
 *
 * Output, one JSON line on stdout:
 *   load:   {"handshakes":N,"errors":E,"seconds":S,"first_error":"..."}
 *   --probe {"ok":true,"fingerprint256":"AB:..","protocol":"TLSv1.3","cipher":"..","subject":".."}
 *
 * Usage: handshake-client --port P --sni NAME [--host 127.0.0.1] [--proxy-v1]
 *                         [--seconds S] [--in-flight N] [--probe] [--timeout-ms MS]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { IDLE, CONNECTING, HANDSHAKING, CLOSING };

struct slot {
  enum state state;
  int fd;
  SSL *ssl;
  double deadline;
};

static const char *host = "127.0.0.1";
static int port = 0;
static const char *sni = NULL;
static int proxy_v1 = 0;
static double seconds = 3;
static int in_flight = 8;
static int probe = 0;
static double timeout_s = 10;

static SSL_CTX *ctx;
static int epfd;
static struct sockaddr_in server;
static long handshakes = 0, errors = 0;
static char first_error[256] = "";

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void note_error(const char *what) {
  errors++;
  if (!first_error[0]) {
    unsigned long e = ERR_peek_last_error();
    char ssl_reason[160] = "";
    if (e) ERR_error_string_n(e, ssl_reason, sizeof ssl_reason);
    snprintf(first_error, sizeof first_error, "%s%s%s%s%s", what, errno ? ": " : "", errno ? strerror(errno) : "",
             ssl_reason[0] ? ": " : "", ssl_reason);
    for (char *c = first_error; *c; c++) if (*c == '"' || *c == '\\') *c = '\'';
  }
  ERR_clear_error();
}

static void release(struct slot *s) {
  if (s->ssl) SSL_free(s->ssl);
  if (s->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
  }
  s->ssl = NULL;
  s->fd = -1;
  s->state = IDLE;
}

static void watch(struct slot *s, uint32_t events, int op) {
  struct epoll_event ev = { .events = events, .data.ptr = s };
  epoll_ctl(epfd, op, s->fd, &ev);
}

static void begin(struct slot *s) {
  errno = 0;
  s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (s->fd < 0) { note_error("socket"); s->state = IDLE; return; }
  int one = 1;
  setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  s->deadline = now() + timeout_s;
  s->state = CONNECTING;
  if (connect(s->fd, (struct sockaddr *)&server, sizeof server) < 0 && errno != EINPROGRESS) {
    note_error("connect");
    release(s);
    return;
  }
  watch(s, EPOLLOUT, EPOLL_CTL_ADD);
}

static void start_tls(struct slot *s) {
  if (proxy_v1) {
    struct sockaddr_in local;
    socklen_t len = sizeof local;
    getsockname(s->fd, (struct sockaddr *)&local, &len);
    char header[128];
    int n = snprintf(header, sizeof header, "PROXY TCP4 198.51.100.20 %s %d %d\r\n", host, ntohs(local.sin_port), port);
    if (write(s->fd, header, n) != n) { note_error("write PROXY header"); release(s); return; }
  }
  s->ssl = SSL_new(ctx);
  SSL_set_fd(s->ssl, s->fd);
  SSL_set_tlsext_host_name(s->ssl, sni);
  SSL_set_connect_state(s->ssl);
  s->state = HANDSHAKING;
}

/* Prints what the server presented (probe mode). */
static void print_probe(SSL *ssl) {
  X509 *cert = SSL_get1_peer_certificate(ssl);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  char fp[3 * EVP_MAX_MD_SIZE + 1] = "", subject[256] = "";
  if (cert) {
    X509_digest(cert, EVP_sha256(), md, &mdlen);
    for (unsigned int i = 0; i < mdlen; i++) sprintf(fp + 3 * i, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
    for (char *c = subject; *c; c++) if (*c == '"' || *c == '\\') *c = '\'';
    X509_free(cert);
  }
  printf("{\"ok\":true,\"fingerprint256\":\"%s\",\"protocol\":\"%s\",\"cipher\":\"%s\",\"subject\":\"%s\"}\n",
         fp, SSL_get_version(ssl), SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)), subject);
}

static void step(struct slot *s) {
  if (s->state == CONNECTING) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { errno = err; note_error("connect"); release(s); return; }
    start_tls(s);
    if (s->state != HANDSHAKING) return;
  }
  if (s->state == HANDSHAKING) {
    errno = 0;
    int r = SSL_do_handshake(s->ssl);
    if (r == 1) {
      handshakes++;
      if (probe) print_probe(s->ssl);
      SSL_shutdown(s->ssl); /* close_notify; the server answers by closing */
      s->state = CLOSING;
      watch(s, EPOLLIN, EPOLL_CTL_MOD);
      return;
    }
    int e = SSL_get_error(s->ssl, r);
    if (e == SSL_ERROR_WANT_READ) { watch(s, EPOLLIN, EPOLL_CTL_MOD); return; }
    if (e == SSL_ERROR_WANT_WRITE) { watch(s, EPOLLOUT, EPOLL_CTL_MOD); return; }
    note_error("handshake");
    release(s);
    return;
  }
  if (s->state == CLOSING) {
    char buf[4096];
    for (;;) {
      ssize_t n = read(s->fd, buf, sizeof buf); /* tickets, close_notify: not needed, discarded */
      if (n > 0) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      release(s); /* EOF or reset: done */
      return;
    }
  }
}

static int arg_is(const char *a, const char *name) { return strcmp(a, name) == 0; }

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (arg_is(a, "--proxy-v1")) proxy_v1 = 1;
    else if (arg_is(a, "--probe")) probe = 1;
    else if (v && arg_is(a, "--host")) { host = v; i++; }
    else if (v && arg_is(a, "--port")) { port = atoi(v); i++; }
    else if (v && arg_is(a, "--sni")) { sni = v; i++; }
    else if (v && arg_is(a, "--seconds")) { seconds = atof(v); i++; }
    else if (v && arg_is(a, "--in-flight")) { in_flight = atoi(v); i++; }
    else if (v && arg_is(a, "--timeout-ms")) { timeout_s = atof(v) / 1000; i++; }
    else { fprintf(stderr, "handshake-client: bad argument %s\n", a); return 2; }
  }
  if (!port || !sni || in_flight < 1) {
    fprintf(stderr, "usage: handshake-client --port P --sni NAME [--host H] [--proxy-v1] [--seconds S] [--in-flight N] [--probe]\n");
    return 2;
  }
  if (probe) in_flight = 1;
  memset(&server, 0, sizeof server);
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  if (inet_pton(AF_INET, host, &server.sin_addr) != 1) { fprintf(stderr, "handshake-client: --host must be an IPv4 address\n"); return 2; }

  ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  /* The server's signature is checked by the protocol itself; the chain is compared by
   * fingerprint in --probe mode, so no verification cost here. */
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

  epfd = epoll_create1(0);
  struct slot *slots = calloc(in_flight, sizeof *slots);
  for (int i = 0; i < in_flight; i++) { slots[i].fd = -1; slots[i].state = IDLE; }

  double started = now(), end = started + seconds;
  struct epoll_event events[256];
  for (;;) {
    double t = now();
    int active = 0;
    for (int i = 0; i < in_flight; i++) {
      struct slot *s = &slots[i];
      if (s->state != IDLE && t > s->deadline) {
        if (s->state == CLOSING) release(s);
        else { errno = ETIMEDOUT; note_error(s->state == CONNECTING ? "connect" : "handshake"); release(s); }
      }
      if (s->state == IDLE && !probe && t < end) begin(s);
      if (s->state == IDLE && probe && handshakes == 0 && errors == 0) begin(s);
      if (s->state != IDLE) active++;
    }
    if (!active) break;
    int n = epoll_wait(epfd, events, 256, 50);
    for (int i = 0; i < n; i++) step((struct slot *)events[i].data.ptr);
  }
  double elapsed = now() - started;
  if (probe) {
    if (handshakes == 0) printf("{\"ok\":false,\"error\":\"%s\"}\n", first_error);
    return handshakes ? 0 : 1;
  }
  printf("{\"handshakes\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"first_error\":\"%s\"}\n", handshakes, errors, elapsed, first_error);
  return 0;
}
