/*
 * The devices a container may use: one table, from which come the nodes made in its /dev, the v1 device cgroup's
 * allow-list and the v2 BPF device program. The cgroup rule holds even for a process that somehow has CAP_MKNOD
 * (which containers never keep): it can neither make nor open a node of any other device.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "helper.h"

struct device {
  const char *name; /* node made in /dev, or NULL: allowed, but the kernel makes it (devpts) */
  int major;
  int minor; /* -1: any minor */
};

/* Character devices only; no block device at all. */
static const struct device devices[] = {
    {"null", 1, 3},  {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9},
    {"tty", 5, 0},   {NULL, 5, 2} /* /dev/pts/ptmx */, {NULL, 136, -1} /* pseudo-terminals in /dev/pts */,
};
enum { NDEVICES = sizeof devices / sizeof devices[0] };

/* The nodes, /dev/shm and the usual links, in the /dev tmpfs open as `dir`; owned by `owner` (container root). */
static int fill_dev(int dir, uid_t owner, char *err, size_t errlen) {
  for (int i = 0; i < NDEVICES; i++) {
    if (!devices[i].name) continue;
    if (mknodat(dir, devices[i].name, S_IFCHR | 0666, makedev(devices[i].major, devices[i].minor)) < 0 ||
        fchmodat(dir, devices[i].name, 0666, 0) < 0 || fchownat(dir, devices[i].name, owner, owner, 0) < 0)
      FAIL("mknod /dev/%s: %s", devices[i].name, strerror(errno));
  }
  /* /dev is a size-limited tmpfs already, so /dev/shm is a directory in it: one mount less to set up and tear down. */
  if (mkdirat(dir, "pts", 0755) < 0 || mkdirat(dir, "shm", 01777) < 0 || fchmodat(dir, "shm", 01777, 0) < 0 ||
      fchownat(dir, "pts", owner, owner, 0) < 0 || fchownat(dir, "shm", owner, owner, 0) < 0)
    FAIL("make /dev: %s", strerror(errno));
  static const char *links[][2] = {
      {"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
      {"/proc/self/fd/2", "stderr"},
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    if (symlinkat(links[i][0], dir, links[i][1]) < 0 || fchownat(dir, links[i][1], owner, owner, AT_SYMLINK_NOFOLLOW) < 0)
      FAIL("make /dev/%s: %s", links[i][1], strerror(errno));
  }
  return 0;
}

/*
 * For a container with a user namespace, made by the supervisor: nodes in a tmpfs mounted inside a user
 * namespace do not open (the kernel makes such a tmpfs nodev), so /dev is a detached tmpfs from the host's side,
 * moved into place by the container (userns.c). One mount, instead of binding each node from the host's /dev.
 */
int make_dev_mount(uid_t owner, char *err, size_t errlen) {
  int fs = fsopen("tmpfs", FSOPEN_CLOEXEC);
  if (fs < 0) FAIL("mount /dev: %s", strerror(errno));
  char id[16];
  snprintf(id, sizeof id, "%u", owner);
  int rc = fsconfig(fs, FSCONFIG_SET_STRING, "mode", "755", 0) | fsconfig(fs, FSCONFIG_SET_STRING, "size", "65536k", 0) |
           fsconfig(fs, FSCONFIG_SET_STRING, "uid", id, 0) | fsconfig(fs, FSCONFIG_SET_STRING, "gid", id, 0) |
           fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
  int mnt = rc < 0 ? -1 : fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_STRICTATIME);
  int e = errno;
  close(fs);
  if (mnt < 0) FAIL("mount /dev: %s", strerror(e));
  if (fill_dev(mnt, owner, err, errlen) < 0) {
    close(mnt);
    return -1;
  }
  return mnt;
}

/* `root`/dev: a tmpfs with the nodes (or, `dev_mount` >= 0, the one the supervisor made), and a private devpts. */
int make_dev(const char *root, int dev_mount, char *err, size_t errlen) {
  char dev[PATH_MAX], path[PATH_MAX];
  snprintf(dev, sizeof dev, "%s/dev", root);
  if (dev_mount >= 0) {
    int rc = move_mount(dev_mount, "", AT_FDCWD, dev, MOVE_MOUNT_F_EMPTY_PATH);
    int e = errno;
    close(dev_mount);
    if (rc < 0) FAIL("mount /dev: %s", strerror(e));
  } else {
    if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0)
      FAIL("mount /dev: %s", strerror(errno));
    int dir = open(dev, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) FAIL("open /dev: %s", strerror(errno));
    int rc = fill_dev(dir, 0, err, errlen);
    close(dir);
    if (rc < 0) return -1;
  }
  /* A private devpts instance; optional, so a kernel without it still runs containers. */
  snprintf(path, sizeof path, "%s/pts", dev);
  if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") < 0) {
    /* no /dev/pts: /dev/ptmx dangles, as /dev/ptmx does on a kernel without devpts */
  }
  return 0;
}

static int write_rule(const char *dir, const char *file, const char *rule, char *err, size_t errlen) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) FAIL("device cgroup %s: %s", path, strerror(errno));
  ssize_t n = write(fd, rule, strlen(rule));
  int e = errno;
  close(fd);
  if (n < 0) FAIL("device cgroup: write '%s' to %s: %s", rule, path, strerror(e));
  return 0;
}

static void v1_rule(int i, char *rule, size_t len) {
  char minor[16];
  if (devices[i].minor < 0) snprintf(minor, sizeof minor, "*");
  else snprintf(minor, sizeof minor, "%d", devices[i].minor);
  snprintf(rule, len, "c %d:%s rwm", devices[i].major, minor);
}

/* devices.list as the kernel shows the table once applied ("m" too: init makes the nodes after joining). */
static void v1_expected(char *out, size_t len) {
  size_t off = 0;
  out[0] = 0;
  for (int i = 0; i < NDEVICES && off < len; i++) {
    v1_rule(i, out + off, len - off);
    off += strlen(out + off);
    if (off + 1 < len) out[off++] = '\n', out[off] = 0;
  }
}

static int read_list(const char *dir, char *out, size_t len) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/devices.list", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, out, len - 1);
  close(fd);
  out[n > 0 ? n : 0] = 0;
  return n < 0 ? -1 : 0;
}

/*
 * v1: every container joins one devices cgroup, `dir` (the allow-list is the same for all), which the first start
 * makes and fills. Making and removing a devices cgroup per container with its nine rule writes cost ~0.6 ms of
 * each start (200 interleaved pairs). A start that finds the list incomplete takes a lock on the directory, so no
 * container joins halfway through the rules. A list left by another table (an older tau) is brought to this one
 * by adding first and removing after, so containers already in it never lose a device they are allowed.
 */
static int ensure_v1(const char *dir, char *err, size_t errlen) {
  char want[1024], have[4096];
  v1_expected(want, sizeof want);
  if (read_list(dir, have, sizeof have) == 0 && strcmp(have, want) == 0) return 0;
  if (mkdir(dir, 0755) < 0 && errno != EEXIST) FAIL("create device cgroup %s: %s", dir, strerror(errno));
  int lock = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock < 0 || flock(lock, LOCK_EX) < 0) FAIL("lock device cgroup %s: %s", dir, strerror(errno));
  int rc = 0;
  if (read_list(dir, have, sizeof have) < 0) rc = snprintf(err, errlen, "read %s/devices.list: %s", dir, strerror(errno));
  if (rc == 0 && strcmp(have, want) != 0) {
    char rule[64];
    /* A new cgroup allows everything ("a *:* rwm"): deny it all first; nobody is in it yet. */
    if (strstr(have, "a *:*")) rc = write_rule(dir, "devices.deny", "a", err, errlen);
    for (int i = 0; rc == 0 && i < NDEVICES; i++) {
      v1_rule(i, rule, sizeof rule);
      rc = write_rule(dir, "devices.allow", rule, err, errlen);
    }
    for (char *save = NULL, *line = strtok_r(have, "\n", &save); rc == 0 && line; line = strtok_r(NULL, "\n", &save)) {
      if (strstr(line, "a *:*")) continue;
      snprintf(rule, sizeof rule, "%s\n", line);
      if (!strstr(want, rule)) rc = write_rule(dir, "devices.deny", line, err, errlen);
    }
  }
  flock(lock, LOCK_UN);
  close(lock);
  return rc == 0 ? 0 : -1;
}

#define INSN(c, d, s, o, i) ((struct bpf_insn){.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)})

/*
 * v2: a BPF_PROG_TYPE_CGROUP_DEVICE program. Its context is {access_type = access << 16 | type, major, minor};
 * returning 1 allows the access. The program tests the table in order and returns 0 when nothing matched.
 */
static int attach_bpf(const char *dir, char *err, size_t errlen) {
  struct bpf_insn prog[8 + NDEVICES * 5];
  int n = 0;
  prog[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_2, BPF_REG_1, 0, 0); /* r2 = access_type */
  prog[n++] = INSN(BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);  /* r2 = device type */
  prog[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_4, BPF_REG_1, 4, 0); /* r4 = major */
  prog[n++] = INSN(BPF_LDX | BPF_W | BPF_MEM, BPF_REG_5, BPF_REG_1, 8, 0); /* r5 = minor */
  for (int i = 0; i < NDEVICES; i++) {
    int any_minor = devices[i].minor < 0;
    int skip = any_minor ? 3 : 4; /* instructions to the next rule */
    prog[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, skip--, BPF_DEVCG_DEV_CHAR);
    prog[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, skip--, devices[i].major);
    if (!any_minor) prog[n++] = INSN(BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, skip--, devices[i].minor);
    prog[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
    prog[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  }
  prog[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
  prog[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  union bpf_attr load;
  memset(&load, 0, sizeof load);
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = (unsigned long)prog;
  load.insn_cnt = (unsigned)n;
  load.license = (unsigned long)"GPL";
  int prog_fd = (int)syscall(SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
  if (prog_fd < 0) FAIL("load the device cgroup program (BPF): %s", strerror(errno));
  int cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0) {
    close(prog_fd);
    FAIL("open cgroup %s: %s", dir, strerror(errno));
  }
  union bpf_attr attach;
  memset(&attach, 0, sizeof attach);
  attach.target_fd = (unsigned)cg;
  attach.attach_bpf_fd = (unsigned)prog_fd;
  attach.attach_type = BPF_CGROUP_DEVICE;
  /* The attachment keeps the program alive until the cgroup is removed. */
  int rc = (int)syscall(SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach);
  int e = errno;
  close(cg);
  close(prog_fd);
  if (rc < 0) FAIL("attach the device program to %s: %s", dir, strerror(e));
  return 0;
}

/*
 * `dir` is the shared v1 devices cgroup (`v1`: made here if needed) or the container's own v2 cgroup, made
 * already, which gets a BPF program (loading and attaching one is two calls on a cgroup the container has anyway).
 */
int devices_restrict(const char *dir, int v1, char *err, size_t errlen) {
  return v1 ? ensure_v1(dir, err, errlen) : attach_bpf(dir, err, errlen);
}
