/*
 * Builds the container's root filesystem inside its own mount namespace, so that every mount disappears with the
 * namespace: nothing can leak onto the host even if tau or this helper is killed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "helper.h"


/*
 * Creates root/target one component at a time and refuses symlinks on the way: the image controls the rootfs
 * contents, and a link like /config -> /etc would otherwise make us bind over a host path before pivot_root.
 */
static int make_target(const char *root, const char *target, int is_dir, char *err, size_t errlen) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s", root);
  const char *p = target;
  while (*p == '/') p++;
  while (*p) {
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 2 && strncmp(p, "..", 2) == 0) FAIL("mount target %s must not contain '..'", target);
    size_t cur = strlen(path);
    if (cur + len + 2 >= sizeof path) FAIL("mount target %s is too long", target);
    path[cur] = '/';
    memcpy(path + cur + 1, p, len);
    path[cur + 1 + len] = 0;
    int last = end == NULL || end[strspn(end, "/")] == 0;
    struct stat st;
    if (lstat(path, &st) == 0) {
      if (S_ISLNK(st.st_mode)) FAIL("mount target %s goes through a symlink in the image", target);
    } else if (errno == ENOENT) {
      if (!last || is_dir) {
        if (mkdir(path, 0755) < 0) FAIL("mkdir %s: %s", target, strerror(errno));
      } else {
        int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
        if (fd < 0) FAIL("create %s: %s", target, strerror(errno));
        close(fd);
      }
    } else {
      FAIL("stat %s: %s", target, strerror(errno));
    }
    if (last) break;
    p = end + strspn(end, "/");
  }
  return 0;
}

static int bind_user_mounts(const struct config *cfg, const char *root, char *err, size_t errlen) {
  for (int i = 0; i < cfg->nmounts; i++) {
    const struct bind_mount *m = &cfg->mounts[i];
    char dst[PATH_MAX];
    snprintf(dst, sizeof dst, "%s/%s", root, m->target);
    struct stat st;
    if (cfg->userns_base > 0) {
      /* Made (idmapped, read-only when asked) by the supervisor: see userns.c. */
      int fd = userns_receive_mount(cfg, err, errlen);
      if (fd < 0) return -1;
      int rc = fstat(fd, &st) < 0 ? -1 : make_target(root, m->target, S_ISDIR(st.st_mode), err, errlen);
      if (rc == 0 && move_mount(fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        rc = snprintf(err, errlen, "bind %s: %s", m->source, strerror(errno));
      close(fd);
      if (rc != 0) return -1;
      continue;
    }
    if (stat(m->source, &st) < 0) FAIL("mount source %s: %s", m->source, strerror(errno));
    if (make_target(root, m->target, S_ISDIR(st.st_mode), err, errlen) < 0) return -1;
    if (mount(m->source, dst, NULL, MS_BIND | MS_REC, NULL) < 0) FAIL("bind %s: %s", m->source, strerror(errno));
    if (m->readonly &&
        mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) < 0)
      FAIL("read-only remount of %s: %s", m->target, strerror(errno));
  }
  return 0;
}

/*
 * Without a user namespace the overlay is mounted here; with one, the supervisor made it (userns.c), and the
 * rootfs becomes the working directory before this process gives up its host uid: the path to it may pass
 * directories only the host's root may enter.
 */
static int mount_overlay(const struct config *cfg, char *err, size_t errlen) {
  if (cfg->userns_base > 0) {
    if (userns_receive_rootfs(cfg, err, errlen) < 0) return -1;
    if (chdir(cfg->rootfs) < 0) FAIL("chdir rootfs: %s", strerror(errno));
    return userns_become_root(err, errlen);
  }
  char opts[PATH_MAX * 2];
  int n = snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", cfg->lowerdirs, cfg->upperdir,
                   cfg->workdir);
  if (n >= (int)sizeof opts - 16) FAIL("too many image layers for one overlay mount");
  /*
   * "volatile": the upper dir is scratch space that dies with the container, so overlay need not sync the host
   * filesystem when the container's mount namespace goes away (that sync was a large part of start-to-exit).
   * Kernels before 5.10 do not know the option: fall back to a plain mount.
   */
  size_t plain = (size_t)n;
  snprintf(opts + plain, sizeof opts - plain, ",volatile");
  if (mount("overlay", cfg->rootfs, "overlay", 0, opts) < 0) {
    opts[plain] = 0;
    if (errno != EINVAL || mount("overlay", cfg->rootfs, "overlay", 0, opts) < 0)
      FAIL("mount overlay rootfs: %s", strerror(errno));
  }
  return 0;
}

/*
 * /proc and /sys are not namespaced below these paths: they configure or describe the host's kernel. Read-only
 * (crun's list): /proc/sys would otherwise let a container set vm.overcommit_ratio or kernel.core_pattern for the
 * whole machine. Masked (a read-only empty tmpfs over directories, /dev/null over files): what leaks the host's
 * memory, keys, timers or firmware. Paths this kernel does not have are skipped.
 */
static const char *readonly_paths[] = {
    "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
};
static const char *masked_dirs[] = {"/proc/acpi", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"};
static const char *masked_files[] = {
    "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
};

static int hide_kernel_interfaces(const char *root, char *err, size_t errlen) {
  char path[PATH_MAX], null[PATH_MAX];
  const unsigned long ro = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC;
  for (size_t i = 0; i < sizeof readonly_paths / sizeof readonly_paths[0]; i++) {
    snprintf(path, sizeof path, "%s%s", root, readonly_paths[i]);
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0) {
      if (errno == ENOENT) continue;
      FAIL("make %s read-only: %s", readonly_paths[i], strerror(errno));
    }
    if (mount(NULL, path, NULL, ro, NULL) < 0) FAIL("make %s read-only: %s", readonly_paths[i], strerror(errno));
  }
  for (size_t i = 0; i < sizeof masked_dirs / sizeof masked_dirs[0]; i++) {
    snprintf(path, sizeof path, "%s%s", root, masked_dirs[i]);
    if (mount("tmpfs", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=555") < 0 &&
        errno != ENOENT)
      FAIL("mask %s: %s", masked_dirs[i], strerror(errno));
  }
  snprintf(null, sizeof null, "%s/dev/null", root);
  for (size_t i = 0; i < sizeof masked_files / sizeof masked_files[0]; i++) {
    snprintf(path, sizeof path, "%s%s", root, masked_files[i]);
    if (mount(null, path, NULL, MS_BIND, NULL) < 0 && errno != ENOENT)
      FAIL("mask %s: %s", masked_files[i], strerror(errno));
  }
  return 0;
}

int setup_rootfs(const struct config *cfg, char *err, size_t errlen) {
  char path[PATH_MAX];
  /* Private propagation first, so none of the mounts below reach the host's namespace. */
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) FAIL("make / private: %s", strerror(errno));
  if (mount_overlay(cfg, err, errlen) < 0) return -1;
  const char *root = cfg->userns_base > 0 ? "." : cfg->rootfs;
  if (bind_user_mounts(cfg, root, err, errlen) < 0) return -1;
  if (make_target(root, "/dev", 1, err, errlen) < 0) return -1;
  int dev_mount = cfg->userns_base > 0 ? userns_receive_mount(cfg, err, errlen) : -1;
  if (cfg->userns_base > 0 && dev_mount < 0) return -1;
  if (make_dev(root, dev_mount, err, errlen) < 0) return -1;
  if (make_target(root, "/proc", 1, err, errlen) < 0) return -1;
  snprintf(path, sizeof path, "%s/proc", root);
  if (mount("proc", path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) FAIL("mount /proc: %s", strerror(errno));
  if (make_target(root, "/sys", 1, err, errlen) < 0) return -1;
  snprintf(path, sizeof path, "%s/sys", root);
  if (cfg->userns_base > 0 && cfg->netns_pooled) {
    /* Made read-only by the supervisor inside the pre-made network namespace (netns.c), sent after /dev. */
    int fd = userns_receive_mount(cfg, err, errlen);
    if (fd < 0) return -1;
    int rc = move_mount(fd, "", AT_FDCWD, path, MOVE_MOUNT_F_EMPTY_PATH);
    int e = errno;
    close(fd);
    if (rc < 0) FAIL("mount /sys read-only: %s", strerror(e));
  } else if (mount("sysfs", path, "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
    FAIL("mount /sys read-only: %s", strerror(errno));
  }
  if (hide_kernel_interfaces(root, err, errlen) < 0) return -1;
  if (make_target(root, "/tmp", 1, err, errlen) < 0) return -1;
  /* pivot_root(".", ".") stacks the old root under the new one; detaching "." then drops the host tree. */
  if (chdir(root) < 0) FAIL("chdir rootfs: %s", strerror(errno));
  if (syscall(SYS_pivot_root, ".", ".") < 0) FAIL("pivot_root: %s", strerror(errno));
  if (umount2(".", MNT_DETACH) < 0) FAIL("detach old root: %s", strerror(errno));
  if (chdir("/") < 0) FAIL("chdir /: %s", strerror(errno));
  return 0;
}

int loopback_up(char *err, size_t errlen) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) FAIL("socket: %s", strerror(errno));
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
    close(fd);
    FAIL("read lo flags: %s", strerror(errno));
  }
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
    close(fd);
    FAIL("bring lo up: %s", strerror(errno));
  }
  close(fd);
  return 0;
}
