/*
 * The container's own user namespace: container uids and gids 0..65535 are host ids base..base+65535, so its root
 * is an unprivileged user to the host kernel (a sysctl, a device, a kernel keyring or a file outside the
 * container it reaches as nobody), whatever a bug lets it do inside.
 *
 * Image layers are shared and stay as extracted (owned by 0 and the image's ids): idmapped mounts show them to the
 * container in its own ids, with nothing copied or chowned. Only a process privileged on the host may idmap a
 * mount or mount overlay over them, so the supervisor builds the rootfs overlay and every bind mount as detached
 * mounts and sends them over a socket; the container moves them into place. The upper dir is not idmapped
 * (overlay writes its work dir with the mounter's host ids, which the mapping cannot express): it belongs to host
 * uid base, and what the container writes is stored in host ids. A clone snapshot of it is therefore a layer that
 * is already shifted, and the top `shifted_lowers` layers are used without idmap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sched.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helper.h"

static int write_map(pid_t pid, const char *file, long base, char *err, size_t errlen) {
  char path[64], map[64];
  snprintf(path, sizeof path, "/proc/%d/%s", pid, file);
  snprintf(map, sizeof map, "0 %ld 65536\n", base);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) FAIL("user namespace: open %s: %s", path, strerror(errno));
  ssize_t n = write(fd, map, strlen(map));
  int e = errno;
  close(fd);
  if (n < 0) FAIL("user namespace: write %s: %s", path, strerror(e));
  return 0;
}

static int send_fd(int sock, int fd, char *err, size_t errlen) {
  char byte = 'm', control[CMSG_SPACE(sizeof fd)];
  memset(control, 0, sizeof control);
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof fd);
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) < 0) FAIL("send a mount to the container: %s", strerror(errno));
  return 0;
}

static int recv_fd(int sock, char *err, size_t errlen) {
  char byte, control[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {.iov_base = &byte, .iov_len = 1};
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
  if (recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) <= 0) FAIL("receive a mount from the supervisor: %s", strerror(errno));
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) FAIL("receive a mount from the supervisor: no descriptor");
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

/* The kernel's own words (overlay writes them to the fs context) beat a bare EINVAL. */
static int fs_error(int fs, const char *what, char *err, size_t errlen) {
  int e = errno;
  char msg[512];
  ssize_t n = read(fs, msg, sizeof msg - 1);
  if (n > 2) {
    msg[n] = 0;
    FAIL("%s: %s", what, msg + 2); /* "e overlay: ..." */
  }
  FAIL("%s: %s", what, strerror(e));
}

static int overlay_fd(const struct config *cfg, const struct mount_attr *idmap, char *err, size_t errlen) {
  int fs = fsopen("overlay", FSOPEN_CLOEXEC);
  if (fs < 0) FAIL("mount overlay rootfs: %s", strerror(errno));
  /*
   * A shifted layer (stored in host uids already) is given by its path. An image layer is an idmapped detached
   * mount: made once for a whole batch (userns_prepare_layers), or here, living while its descriptor is open, until
   * overlay has cloned it. Every detached mount closed while still detached makes the kernel wait for an expedited
   * RCU grace period, one at a time across the machine: with 100 starts at once, that wait was most of their time.
   */
  int layers[MAX_ITEMS], nlayers = 0, k = 0, rc = 0;
  char *lowers = strdup(cfg->lowerdirs), *save = NULL;
  for (char *l = strtok_r(lowers, ":", &save); l && rc == 0; l = strtok_r(NULL, ":", &save), k++) {
    if (k == MAX_ITEMS) {
      rc = snprintf(err, errlen, "too many image layers for one overlay mount");
      break;
    }
    char path[64];
    const char *lower = path;
    if (k < cfg->shifted_lowers) {
      lower = l;
    } else if (cfg->layer_fds[k] >= 0) {
      snprintf(path, sizeof path, "/proc/self/fd/%d", cfg->layer_fds[k]);
    } else {
      int layer = open_tree(AT_FDCWD, l, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
      if (layer < 0) {
        rc = snprintf(err, errlen, "image layer %s: %s", l, strerror(errno));
        break;
      }
      layers[nlayers++] = layer;
      snprintf(path, sizeof path, "/proc/self/fd/%d", layer);
      if (mount_setattr(layer, "", AT_EMPTY_PATH, (struct mount_attr *)idmap, sizeof *idmap) < 0) {
        rc = snprintf(err, errlen, "map image layer %s into the user namespace: %s", l, strerror(errno));
        break;
      }
    }
    if (fsconfig(fs, FSCONFIG_SET_STRING, "lowerdir+", lower, 0) < 0) rc = fs_error(fs, "mount overlay rootfs", err, errlen);
  }
  free(lowers);
  if (rc == 0 && (fsconfig(fs, FSCONFIG_SET_STRING, "upperdir", cfg->upperdir, 0) < 0 ||
                  fsconfig(fs, FSCONFIG_SET_STRING, "workdir", cfg->workdir, 0) < 0))
    rc = fs_error(fs, "mount overlay rootfs", err, errlen);
  /* "volatile" as in the plain mount (rootfs.c); optional for the same reason. */
  if (rc == 0) fsconfig(fs, FSCONFIG_SET_FLAG, "volatile", NULL, 0);
  if (rc == 0 && fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) rc = fs_error(fs, "mount overlay rootfs", err, errlen);
  int mnt = rc == 0 ? fsmount(fs, FSMOUNT_CLOEXEC, 0) : -1;
  if (rc == 0 && mnt < 0) rc = snprintf(err, errlen, "mount overlay rootfs: %s", strerror(errno));
  for (int i = 0; i < nlayers; i++) close(layers[i]);
  close(fs);
  return rc == 0 ? mnt : -1;
}

/*
 * Supervisor, after clone and before the container goes on: maps, then the rootfs, each --mount, /dev and, in a
 * pre-made network namespace, /sys (netns.c).
 */
int userns_send_mounts(struct config *cfg, pid_t init, char *err, size_t errlen) {
  if (write_map(init, "uid_map", cfg->userns_base, err, errlen) < 0) return -1;
  if (write_map(init, "gid_map", cfg->userns_base, err, errlen) < 0) return -1;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/ns/user", init);
  int userns = open(path, O_RDONLY | O_CLOEXEC);
  if (userns < 0) FAIL("open the container's user namespace: %s", strerror(errno));
  struct mount_attr idmap = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (unsigned)userns};
  int rc = -1, mnt = overlay_fd(cfg, &idmap, err, errlen);
  if (mnt >= 0) {
    rc = send_fd(cfg->mount_sock[0], mnt, err, errlen);
    close(mnt);
  }
  for (int i = 0; rc == 0 && i < cfg->nmounts; i++) {
    const struct bind_mount *m = &cfg->mounts[i];
    int fd = open_tree(AT_FDCWD, m->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (fd < 0) {
      rc = snprintf(err, errlen, "mount source %s: %s", m->source, strerror(errno));
      break;
    }
    /* The container's root acts as the host's root on a path the user chose to mount, as without a namespace. */
    struct mount_attr attr = idmap;
    if (m->readonly) attr.attr_set |= MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    if (mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) {
      rc = snprintf(err, errlen, "mount source %s: its filesystem cannot be mapped into the container's user "
                    "namespace (%s)", m->source, strerror(errno));
    } else {
      rc = send_fd(cfg->mount_sock[0], fd, err, errlen);
    }
    close(fd);
  }
  if (rc == 0) {
    int dev = make_dev_mount((uid_t)cfg->userns_base, err, errlen);
    rc = dev < 0 ? -1 : send_fd(cfg->mount_sock[0], dev, err, errlen);
    if (dev >= 0) close(dev);
  }
  if (rc == 0 && cfg->sysfs_fd >= 0) rc = send_fd(cfg->mount_sock[0], cfg->sysfs_fd, err, errlen);
  if (cfg->sysfs_fd >= 0) close(cfg->sysfs_fd);
  cfg->sysfs_fd = -1;
  close(userns);
  return rc == 0 ? 0 : -1;
}

/*
 * Batch: the image layers idmapped once, for every container of the batch, through a user namespace with the same
 * mapping as theirs (a mount's idmapping is the mapping; which namespace carried it does not matter). Read-only:
 * overlay only reads its lower layers. Best effort: a layer left at -1 is made per container as usual.
 */
int userns_prepare_layers(struct config *cfg) {
  for (int i = 0; i < MAX_ITEMS; i++) cfg->layer_fds[i] = -1;
  if (cfg->userns_base <= 0) return 0;
  int sync[2];
  if (pipe2(sync, O_CLOEXEC) < 0) return -1;
  pid_t holder = fork();
  if (holder < 0) return -1;
  if (holder == 0) {
    /* Lives only until the parent has opened its user namespace. */
    char byte = unshare(CLONE_NEWUSER) == 0 ? 'u' : 'x';
    if (write(sync[1], &byte, 1) < 0) _exit(1);
    pause();
    _exit(0);
  }
  close(sync[1]);
  char byte = 0, err[256];
  int userns = -1;
  if (read(sync[0], &byte, 1) == 1 && byte == 'u' && write_map(holder, "uid_map", cfg->userns_base, err, sizeof err) == 0 &&
      write_map(holder, "gid_map", cfg->userns_base, err, sizeof err) == 0) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/ns/user", holder);
    userns = open(path, O_RDONLY | O_CLOEXEC);
  }
  close(sync[0]);
  kill(holder, SIGKILL);
  waitpid(holder, NULL, 0);
  if (userns < 0) return -1;
  struct mount_attr idmap = {.attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY, .userns_fd = (unsigned)userns};
  char *lowers = strdup(cfg->lowerdirs), *save = NULL;
  int k = 0;
  for (char *l = strtok_r(lowers, ":", &save); l && k < MAX_ITEMS; l = strtok_r(NULL, ":", &save), k++) {
    if (k < cfg->shifted_lowers) continue;
    int layer = open_tree(AT_FDCWD, l, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (layer < 0) continue;
    if (mount_setattr(layer, "", AT_EMPTY_PATH, &idmap, sizeof idmap) < 0) {
      close(layer);
      continue;
    }
    cfg->layer_fds[k] = layer;
  }
  free(lowers);
  close(userns);
  return 0;
}

/* The prepared layers, once this process no longer needs them (and at once in the container: it must never hold one). */
void userns_close_layers(struct config *cfg) {
  for (int i = 0; i < MAX_ITEMS; i++) {
    if (cfg->layer_fds[i] >= 0) close(cfg->layer_fds[i]);
    cfg->layer_fds[i] = -1;
  }
}

/* Container, still with host uid 0 (so it can walk root-only dirs to its rootfs): puts the overlay in place. */
int userns_receive_rootfs(const struct config *cfg, char *err, size_t errlen) {
  int fd = recv_fd(cfg->mount_sock[1], err, errlen);
  if (fd < 0) return -1;
  int rc = move_mount(fd, "", AT_FDCWD, cfg->rootfs, MOVE_MOUNT_F_EMPTY_PATH);
  int e = errno;
  close(fd);
  if (rc < 0) FAIL("mount overlay rootfs: %s", strerror(e));
  return 0;
}

/* From here on the container's root is host uid base: what it creates belongs to it, not to the host's root. */
int userns_become_root(char *err, size_t errlen) {
  if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
    FAIL("become root of the user namespace: %s", strerror(errno));
  return 0;
}

/* The next --mount, sent by the supervisor; returns its descriptor (the caller moves it to its target). */
int userns_receive_mount(const struct config *cfg, char *err, size_t errlen) {
  return recv_fd(cfg->mount_sock[1], err, errlen);
}
