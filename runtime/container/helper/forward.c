/*
 * Port publishing without bridges or routes ("direct network"): for each published port a forwarder process
 * serves a Unix socket in the host filesystem and, optionally, the host's 127.0.0.1:<host port>, connecting each
 * client to 127.0.0.1:<port> inside the container's network namespace. The container only ever has loopback.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "helper.h"


static int bind_unix(const char *path) {
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  unlink(path);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 128) < 0) {
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

static int loopback_addr(struct sockaddr_in *addr, int port) {
  memset(addr, 0, sizeof *addr);
  addr->sin_family = AF_INET;
  addr->sin_port = htons((unsigned short)port);
  return inet_pton(AF_INET, "127.0.0.1", &addr->sin_addr);
}

static int connect_loopback(int port) {
  struct sockaddr_in addr;
  loopback_addr(&addr, port);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Copies both directions until both are closed, passing half-closes along (HTTP clients rely on them). */
static void relay(int a, int b) {
  char buf[65536];
  int open_a = 1, open_b = 1;
  while (open_a || open_b) {
    struct pollfd p[2] = {{.fd = open_a ? a : -1, .events = POLLIN}, {.fd = open_b ? b : -1, .events = POLLIN}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < 2; i++) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int from = i == 0 ? a : b, to = i == 0 ? b : a;
      ssize_t n = read(from, buf, sizeof buf);
      if (n <= 0) {
        shutdown(to, SHUT_WR);
        if (i == 0) open_a = 0; else open_b = 0;
        continue;
      }
      for (ssize_t off = 0; off < n;) {
        ssize_t w = write(to, buf + off, n - off);
        if (w <= 0) return;
        off += w;
      }
    }
  }
}

/*
 * The parent-death signal only covers a parent that dies after it is set: if the parent was killed between fork
 * and prctl (tau kills a supervisor right after "started"), the child has been reparented already and must go.
 */
static void die_with(pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(0);
}

/*
 * One forwarder per published port serves both listeners (the Unix socket and, if asked, 127.0.0.1:<host port>).
 * It stays in the host's network namespace and holds the container's: each connection gets a short-lived process
 * that enters the container's namespace and connects to 127.0.0.1:<port> there, so TCP clients need no extra hop.
 */
static void serve(const int *listen_fds, int nfds, int netns, int container_port) {
  signal(SIGCHLD, SIG_IGN); /* auto-reap connection processes */
  struct pollfd p[2];
  for (int i = 0; i < nfds; i++) p[i] = (struct pollfd){.fd = listen_fds[i], .events = POLLIN};
  for (;;) {
    if (poll(p, nfds, -1) < 0) {
      if (errno == EINTR) continue;
      _exit(1);
    }
    for (int i = 0; i < nfds; i++) {
      if (!(p[i].revents & POLLIN)) continue;
      int c = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) continue;
        _exit(1);
      }
      pid_t self = getpid();
      pid_t pid = fork();
      if (pid == 0) {
        die_with(self);
        for (int k = 0; k < nfds; k++) close(listen_fds[k]);
        int flags = fcntl(c, F_GETFL);
        if (flags >= 0) fcntl(c, F_SETFL, flags & ~O_NONBLOCK);
        if (setns(netns, CLONE_NEWNET) < 0) _exit(1);
        int up = connect_loopback(container_port);
        if (up >= 0) relay(c, up);
        _exit(0);
      }
      close(c);
    }
  }
}

/* Forwarders die with the supervisor, keep no copy of tau's status pipe, and take signals normally. */
static void forwarder_reset(pid_t supervisor) {
  die_with(supervisor);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
  }
}

int ports_bind(struct config *cfg, char *err, size_t errlen) {
  for (int i = 0; i < cfg->nports; i++) {
    struct port_map *p = &cfg->ports[i];
    p->tcp_fd = -1;
    p->unix_fd = bind_unix(p->socket_path);
    if (p->unix_fd < 0) FAIL("listen on %s: %s", p->socket_path, strerror(errno));
    if (p->host_port < 0) continue;
    struct sockaddr_in addr;
    loopback_addr(&addr, p->host_port);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 128) < 0) {
      if (errno == EADDRINUSE) FAIL("port %d is already in use on 127.0.0.1", p->host_port);
      FAIL("listen on 127.0.0.1:%d: %s", p->host_port, strerror(errno));
    }
    socklen_t len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &len);
    p->tcp_fd = fd;
    p->bound_host_port = ntohs(addr.sin_port);
  }
  return 0;
}

int ports_start(struct config *cfg, int netns, int *pids, char *err, size_t errlen) {
  int n = 0;
  for (int i = 0; i < cfg->nports; i++) {
    struct port_map *p = &cfg->ports[i];
    int fds[2] = {p->unix_fd, p->tcp_fd};
    pid_t self = getpid();
    pid_t pid = fork();
    if (pid < 0) FAIL("fork forwarder: %s", strerror(errno));
    if (pid == 0) {
      forwarder_reset(self);
      serve(fds, p->tcp_fd >= 0 ? 2 : 1, netns, p->container_port);
    }
    pids[n++] = pid;
    close(p->unix_fd);
    if (p->tcp_fd >= 0) close(p->tcp_fd);
  }
  return n;
}
