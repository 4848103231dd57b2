/* A `provided` runtime for the warm-invoke benchmark: the Runtime API loop in plain C over
 * one keep-alive connection, echoing each event back. Its cost per invoke is a few
 * syscalls, so the benchmark measures Stratus's invoke path, not an interpreter. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static int fd;
static char buf[1 << 20];
static size_t have;

static void die(const char* what) {
  perror(what);
  exit(1);
}

static void send_all(const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w <= 0) die("write");
    p += w;
    n -= (size_t)w;
  }
}

/* Reads one response; copies the request id header and the body out. */
static size_t read_response(char* rid, char* body, size_t body_cap) {
  for (;;) {
    char* end = memmem(buf, have, "\r\n\r\n", 4);
    if (end) {
      size_t head = (size_t)(end - buf) + 4;
      size_t len = 0;
      rid[0] = 0;
      for (char* line = buf; line < end;) {
        char* nl = memmem(line, (size_t)(end - line) + 2, "\r\n", 2);
        if (!nl) break;
        if (strncasecmp(line, "Content-Length:", 15) == 0) len = strtoul(line + 15, NULL, 10);
        if (strncasecmp(line, "Lambda-Runtime-Aws-Request-Id:", 30) == 0) {
          char* v = line + 30;
          while (*v == ' ') v++;
          size_t n = (size_t)(nl - v);
          memcpy(rid, v, n);
          rid[n] = 0;
        }
        line = nl + 2;
      }
      while (have < head + len) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - have);
        if (r <= 0) die("read body");
        have += (size_t)r;
      }
      if (len > body_cap) len = body_cap;
      memcpy(body, buf + head, len);
      memmove(buf, buf + head + len, have - head - len);
      have -= head + len;
      return len;
    }
    ssize_t r = read(fd, buf + have, sizeof(buf) - have);
    if (r <= 0) die("read");
    have += (size_t)r;
  }
}

int main(void) {
  const char* api = getenv("AWS_LAMBDA_RUNTIME_API");
  if (!api) die("AWS_LAMBDA_RUNTIME_API");
  char host[64];
  const char* colon = strchr(api, ':');
  snprintf(host, sizeof host, "%.*s", (int)(colon - api), api);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(colon + 1));
  inet_pton(AF_INET, host, &a.sin_addr);
  fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) die("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  static char event[1 << 19], rid[128], req[(1 << 19) + 512], scratch[256];
  static const char next[] = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n";
  for (;;) {
    send_all(next, sizeof next - 1);
    size_t n = read_response(rid, event, sizeof event);
    int h = snprintf(req, sizeof req,
                     "POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     rid, n);
    memcpy(req + h, event, n);
    send_all(req, (size_t)h + n);
    read_response(scratch, scratch, sizeof scratch);
  }
}
