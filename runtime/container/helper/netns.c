/*
 * Pre-made network namespaces (runtime/container/netns_pool.ts). Creating a network namespace is the largest
 * single cost of a container start (~1.1 ms of CPU, and the kernel serializes part of it: 100 at once wait on each
 * other), so tau can keep a pool of them made ahead of time, each with its loopback up. An entry is a directory
 * holding a file `ns` that a network namespace is bind-mounted on (as `ip netns` does); tau claims one by renaming
 * the directory into the container's state dir, which is atomic, so two starts never get the same one. The
 * supervisor joins it before clone(), so the container is born in it, and releases the entry at once: from then on
 * the namespace lives exactly as long as the container's processes (and the forwarders holding it), as a fresh one.
 *
 * A pooled namespace belongs to the host's user namespace, not to the container's own. Two things follow when the
 * container has a user namespace: ports below 1024 are opened to every uid of the container (the namespace's
 * ip_unprivileged_port_start = 0, as Docker sets it; fresh namespaces get the same, see run.c, so both kinds behave
 * alike), and /sys must be mounted by the supervisor from inside the namespace (sysfs shows the network devices of
 * the namespace that mounts it, and may only be mounted by its owner), then moved into place like /dev.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <linux/limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"

/* Unmounts and removes one entry (`DIR/ns`, then DIR); an entry that is gone already is fine. */
static int release_entry(const char *ns_file) {
  if (umount2(ns_file, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) return -1;
  if (unlink(ns_file) < 0 && errno != ENOENT) return -1;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", ns_file);
  if (rmdir(dirname(dir)) < 0 && errno != ENOENT) return -1;
  return 0;
}

/* `netns-release FILE...`: pool entries tau no longer wants (shutdown, a start that never used its claim). */
int netns_release(int argc, char **argv) {
  int rc = 0;
  for (int i = 0; i < argc; i++) {
    if (release_entry(argv[i]) < 0) {
      fprintf(stderr, "tau-ns-helper: release network namespace %s: %s\n", argv[i], strerror(errno));
      rc = 1;
    }
  }
  return rc;
}

/*
 * `netns-fill DIR COUNT`: makes COUNT entries. Each is built under a name starting with "." (tau never claims those)
 * and renamed into place when complete. This process moves into every namespace it makes; it holds none at exit.
 */
int netns_fill(const char *dir, int count) {
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
    fprintf(stderr, "tau-ns-helper: create %s: %s\n", dir, strerror(errno));
    return 1;
  }
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char err[512];
  for (int i = 0; i < count; i++) {
    char staging[PATH_MAX], file[PATH_MAX], entry[PATH_MAX];
    snprintf(staging, sizeof staging, "%s/.new-%d-%d", dir, getpid(), i);
    snprintf(file, sizeof file, "%s/ns", staging);
    snprintf(entry, sizeof entry, "%s/%d-%lx-%d", dir, getpid(), (unsigned long)ts.tv_nsec, i);
    int fd = -1;
    const char *what = "create";
    if (mkdir(staging, 0700) < 0 || (fd = open(file, O_CREAT | O_EXCL | O_RDONLY | O_CLOEXEC, 0400)) < 0) goto fail;
    close(fd);
    what = "make";
    if (unshare(CLONE_NEWNET) < 0) goto fail;
    if (loopback_up(err, sizeof err) < 0) {
      fprintf(stderr, "tau-ns-helper: %s\n", err);
      release_entry(file);
      return 1;
    }
    what = "bind";
    if (mount("/proc/self/ns/net", file, NULL, MS_BIND, NULL) < 0) goto fail;
    what = "publish";
    if (rename(staging, entry) < 0) goto fail;
    continue;
  fail:
    fprintf(stderr, "tau-ns-helper: %s network namespace %s: %s\n", what, staging, strerror(errno));
    release_entry(file);
    return 1;
  }
  return 0;
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
 * Ports below 1024 for every uid in the namespace: a namespace the container's own user namespace does not own
 * gives its root no CAP_NET_BIND_SERVICE there. Written through the host's /proc, which shows the sysctls of the
 * writer's network namespace.
 */
int netns_open_low_ports(char *err, size_t errlen) {
  int fd = open("/proc/sys/net/ipv4/ip_unprivileged_port_start", O_WRONLY | O_CLOEXEC);
  if (fd < 0) FAIL("open ip_unprivileged_port_start: %s", strerror(errno));
  ssize_t n = write(fd, "0", 1);
  int e = errno;
  close(fd);
  if (n != 1) FAIL("write ip_unprivileged_port_start: %s", strerror(e));
  return 0;
}

/*
 * Supervisor, before clone(): when tau claimed a namespace for this container (cfg->netns_path exists), joins it
 * and releases the entry; returns the host's namespace to come back to after clone(), or -1 (no pooled namespace:
 * clone() makes a fresh one) or -2 (error, in err).
 */
int netns_join_pooled(struct config *cfg, char *err, size_t errlen) {
  if (!cfg->netns_path) return -1;
  int pooled = open(cfg->netns_path, O_RDONLY | O_CLOEXEC);
  if (pooled < 0) {
    if (errno == ENOENT) return -1;
    snprintf(err, errlen, "open network namespace %s: %s", cfg->netns_path, strerror(errno));
    return -2;
  }
  /* Released first: whatever fails below, the entry must not stay mounted in the container's state dir. */
  if (release_entry(cfg->netns_path) < 0) {
    snprintf(err, errlen, "release network namespace %s: %s", cfg->netns_path, strerror(errno));
    close(pooled);
    return -2;
  }
  int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (host < 0 || setns(pooled, CLONE_NEWNET) < 0) {
    snprintf(err, errlen, "join network namespace: %s", strerror(errno));
    close(pooled);
    if (host >= 0) close(host);
    return -2;
  }
  close(pooled);
  cfg->netns_pooled = 1;
  if (cfg->userns_base > 0) {
    if (netns_open_low_ports(err, errlen) < 0 || (cfg->sysfs_fd = sysfs_mount(err, errlen)) < 0) {
      netns_leave(host);
      return -2;
    }
  }
  return host;
}

/* Back to the host's network namespace (the forwarders and everything after clone() run there). */
void netns_leave(int host) {
  if (host < 0) return;
  if (setns(host, CLONE_NEWNET) < 0) die_event("return to the host network namespace", errno);
  close(host);
}
