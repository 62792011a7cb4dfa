/*
 * Pre-made network namespaces (runtime/container/netns_pool.ts). Creating a network namespace is the largest
 * single cost of a container start (~1.1 ms of CPU, part of it serialized in the kernel: 100 at once wait on each
 * other), so tau can keep a pool of them made ahead, each with its loopback up.
 *
 * The pool is a process, `netns-pool SOCKET TARGET`: it holds up to TARGET namespaces as open descriptors and hands
 * each to exactly one supervisor that asks on SOCKET (SCM_RIGHTS), making more whenever nobody has asked for a
 * moment. A handed-out namespace is held by the container's processes alone, so it lives exactly as long as they do,
 * as a fresh one would. Descriptors rather than bind mounts: every mount in the host's namespace is copied into each
 * new container's mount namespace and torn down again (+0.45 ms of CPU per start with 100 namespaces mounted), and a
 * process that dies (stdin closed: tau is gone, however it ended) frees them all, with nothing left to clean up.
 *
 * A pooled namespace belongs to the host's user namespace, not to the container's own. Two things follow when the
 * container has a user namespace: ports below 1024 are opened to every uid of the container (the namespace's
 * ip_unprivileged_port_start = 0, as Docker sets it; fresh namespaces get the same, see run.c, so both kinds behave
 * alike), and /sys is mounted by the pool from inside the namespace when it makes it (sysfs shows the network
 * devices of the namespace that mounts it, and only its owner may mount it), then moved into place like /dev. Both
 * are done ahead, off the start's path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "helper.h"

/*
 * After handing one out, wait this long without requests before making more: a burst of starts (100 clones take
 * 300-500 ms here) must not compete with the pool's own refills for the CPU and the kernel's network locks.
 */
#define REFILL_IDLE_MS 250

static int unix_addr(struct sockaddr_un *addr, const char *path) {
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  if (strlen(path) >= sizeof addr->sun_path) {
    errno = ENAMETOOLONG;
    return -1;
  }
  strcpy(addr->sun_path, path);
  return 0;
}

static int sysfs_mount(char *err, size_t errlen);

/* At most this many namespaces per message: SCM_RIGHTS carries up to 253 descriptors, two per namespace. */
#define PAIRS_PER_MESSAGE 126

/*
 * A new namespace, ready: loopback up, low ports open to every uid (the container may have a user namespace; the
 * supervisor closes them again for one without), its /sys made. This process goes back to `home` either way.
 */
static int make_netns(int home, struct pooled *out, char *err, size_t errlen) {
  if (unshare(CLONE_NEWNET) < 0) FAIL("make a network namespace: %s", strerror(errno));
  out->netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  out->sysfs = -1;
  int rc = out->netns < 0 ? snprintf(err, errlen, "open the new network namespace: %s", strerror(errno)) : 0;
  if (rc == 0) rc = loopback_up(err, errlen) < 0 || netns_set_low_ports(0, err, errlen) < 0;
  if (rc == 0 && (out->sysfs = sysfs_mount(err, errlen)) < 0) rc = -1;
  if (setns(home, CLONE_NEWNET) < 0) {
    fprintf(stderr, "tau-ns-helper: return to the network namespace: %s\n", strerror(errno));
    exit(1); /* the pool must never run inside a namespace it hands out */
  }
  if (rc != 0) {
    if (out->netns >= 0) close(out->netns);
    if (out->sysfs >= 0) close(out->sysfs);
    return -1;
  }
  return 0;
}

/* One message of up to PAIRS_PER_MESSAGE namespaces: a count byte, then their descriptors (namespace, /sys). */
static void give(int conn, const struct pooled *p, int count) {
  int fds[2 * PAIRS_PER_MESSAGE];
  for (int i = 0; i < count; i++) {
    fds[2 * i] = p[i].netns;
    fds[2 * i + 1] = p[i].sysfs;
  }
  unsigned char byte = (unsigned char)count;
  char control[CMSG_SPACE(sizeof fds)];
  memset(control, 0, sizeof control);
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
  if (count > 0) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(2 * count * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(2 * count * sizeof(int));
    memcpy(CMSG_DATA(c), fds, 2 * count * sizeof(int));
  }
  if (sendmsg(conn, &msg, MSG_NOSIGNAL) < 0) { /* the asker is gone: the namespaces are dropped below */ }
}

/*
 * `netns-pool SOCKET TARGET`. Requests: 'g' and a count (2 bytes, little-endian), answered with as many
 * namespaces as the pool holds up to that count, in messages of up to PAIRS_PER_MESSAGE (a message with fewer ends
 * the answer; 0 when the pool is empty); or 's' (status: answered "<free> <target>\n"). A batch of starts asks once
 * for all its containers (main.c). Ends when its stdin closes (tau is gone) or on SIGTERM; the namespaces it still
 * holds go with it.
 */
int netns_pool_serve(const char *path, int target) {
  signal(SIGPIPE, SIG_IGN);
  int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  struct sockaddr_un addr, tmp_addr;
  char tmp[sizeof addr.sun_path];
  snprintf(tmp, sizeof tmp, "%s.%d", path, getpid());
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  unlink(tmp);
  /* Bound under a temporary name and renamed: a client never finds a socket nobody listens on yet. */
  if (home < 0 || lfd < 0 || unix_addr(&addr, path) < 0 || unix_addr(&tmp_addr, tmp) < 0 ||
      bind(lfd, (struct sockaddr *)&tmp_addr, sizeof tmp_addr) < 0 || chmod(tmp, 0600) < 0 ||
      listen(lfd, 1024) < 0 || rename(tmp, path) < 0) {
    fprintf(stderr, "tau-ns-helper: network namespace pool on %s: %s\n", path, strerror(errno));
    unlink(tmp);
    return 1;
  }
  struct pooled *stock = calloc((size_t)target + 1, sizeof *stock);
  int n = 0;
  int wait_ms = 0; /* before making the next one */
  char err[512];
  for (;;) {
    struct pollfd p[2] = {{.fd = lfd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
    int r = poll(p, 2, n < target ? wait_ms : -1);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (p[1].revents) break; /* EOF or hang-up on stdin: tau is gone */
    if (r == 0) {
      if (make_netns(home, &stock[n], err, sizeof err) < 0) {
        fprintf(stderr, "tau-ns-helper: %s\n", err);
        wait_ms = 1000; /* a kernel limit, say: starts make their own meanwhile */
      } else {
        n++;
        wait_ms = 0;
      }
      continue;
    }
    if (!(p[0].revents & POLLIN)) continue;
    int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) continue;
    /* A client writes its byte right after connecting; one that does not must not hold the pool up. */
    struct timeval tv = {.tv_sec = 1};
    setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char req = 0;
    if (read(conn, &req, 1) == 1) {
      unsigned char want[2];
      if (req == 'g' && read(conn, want, 2) == 2) {
        /* Oldest first: which ones a start gets does not depend on when the pool last refilled. */
        int count = want[0] | want[1] << 8, given = 0;
        if (count > n) count = n;
        for (;;) {
          int chunk = count - given < PAIRS_PER_MESSAGE ? count - given : PAIRS_PER_MESSAGE;
          give(conn, stock + given, chunk);
          given += chunk;
          if (chunk < PAIRS_PER_MESSAGE) break;
        }
        for (int i = 0; i < given; i++) {
          close(stock[i].netns);
          close(stock[i].sysfs);
        }
        n -= given;
        memmove(stock, stock + given, (size_t)n * sizeof *stock);
        wait_ms = REFILL_IDLE_MS;
      } else if (req == 's') {
        char line[64];
        int len = snprintf(line, sizeof line, "%d %d\n", n, target);
        if (write(conn, line, (size_t)len) < 0) { /* asker gone */ }
      }
    }
    close(conn);
  }
  unlink(path);
  return 0;
}

/* Asks the pool on `path` for up to `want` namespaces; returns how many `out` got (0: no pool, or it is empty). */
int netns_pool_take(const char *path, int want, struct pooled *out) {
  struct sockaddr_un addr;
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 0;
  int got = 0;
  unsigned char req[3] = {'g', (unsigned char)(want & 0xff), (unsigned char)(want >> 8)};
  if (want > 0xffff || unix_addr(&addr, path) < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0 ||
      write(s, req, sizeof req) != sizeof req) {
    close(s);
    return 0;
  }
  for (;;) {
    int fds[2 * PAIRS_PER_MESSAGE];
    unsigned char count = 0;
    char control[CMSG_SPACE(sizeof fds)];
    struct iovec iov = {.iov_base = &count, .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    if (recvmsg(s, &msg, MSG_CMSG_CLOEXEC) != 1) break;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    int nfds = c && c->cmsg_type == SCM_RIGHTS ? (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int)) : 0;
    if (nfds > 0) memcpy(fds, CMSG_DATA(c), (size_t)nfds * sizeof(int));
    for (int i = 0; i + 1 < nfds && got < want; i += 2) out[got++] = (struct pooled){fds[i], fds[i + 1]};
    if (count < PAIRS_PER_MESSAGE || got >= want) break;
  }
  close(s);
  return got;
}

/* Sysfs as seen from the current network namespace, read-only, as a detached mount for the container. */
static int sysfs_mount(char *err, size_t errlen) {
  int fs = fsopen("sysfs", FSOPEN_CLOEXEC);
  if (fs < 0) FAIL("mount /sys: %s", strerror(errno));
  int mnt = -1;
  if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) == 0)
    mnt = fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  int e = errno;
  close(fs);
  if (mnt < 0) FAIL("mount /sys: %s", strerror(e));
  return mnt;
}

/*
 * The first port that needs CAP_NET_BIND_SERVICE, in the current network namespace: 0 opens them all to every uid,
 * for a container with a user namespace (one its own user namespace does not own gives its root no such capability
 * there); 1024 is the kernel's default. Written through the host's /proc, which shows the sysctls of the writer's
 * network namespace.
 */
int netns_set_low_ports(int first, char *err, size_t errlen) {
  int fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
  if (fd < 0) FAIL("open ip_unprivileged_port_start: %s", strerror(errno));
  char value[16];
  int len = snprintf(value, sizeof value, "%d", first);
  ssize_t n = write(fd, value, (size_t)len);
  int e = errno;
  close(fd);
  if (n != len) FAIL("write ip_unprivileged_port_start: %s", strerror(e));
  return 0;
}

/*
 * Supervisor, before clone(): takes a namespace from the pool (cfg->netns_given, or one asked from cfg->netns_pool)
 * and joins it, so that the container
 * is born in it. Returns the host's namespace to come back to after clone(), -1 when there is none to take (clone()
 * makes a fresh one) or -2 on an error (in err).
 */
int netns_join_pooled(struct config *cfg, char *err, size_t errlen) {
  struct pooled p = cfg->netns_given;
  /* A batch asked for all its containers at once (main.c); a single start asks for its own. */
  if (p.netns < 0 && (!cfg->netns_pool || netns_pool_take(cfg->netns_pool, 1, &p) != 1)) return -1;
  int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (host < 0 || setns(p.netns, CLONE_NEWNET) < 0) {
    snprintf(err, errlen, "join a pre-made network namespace: %s", strerror(errno));
    close(p.netns);
    close(p.sysfs);
    if (host >= 0) close(host);
    return -2;
  }
  close(p.netns);
  cfg->netns_pooled = 1;
  if (cfg->userns_base > 0) {
    cfg->sysfs_fd = p.sysfs; /* sent to the container after /dev (userns.c) */
    return host;
  }
  /* Without a user namespace the container's root mounts /sys itself, and low ports stay as in a fresh one. */
  close(p.sysfs);
  if (netns_set_low_ports(1024, err, errlen) < 0) {
    netns_leave(host);
    return -2;
  }
  return host;
}

/* Back to the host's network namespace (the forwarders and everything after clone() run there). */
void netns_leave(int host) {
  if (host < 0) return;
  if (setns(host, CLONE_NEWNET) < 0) die_event("return to the host network namespace", errno);
  close(host);
}
