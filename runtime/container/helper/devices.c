/*
 * The devices a container may use: one table, from which come the nodes made in its /dev, the v1 device cgroup's
 * allow-list and the v2 BPF device program. The cgroup rule holds even for a process that somehow has CAP_MKNOD
 * (which containers never keep): it can create a node of any other device, but not open it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/limits.h>
#include <stdio.h>
#include <string.h>
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

int make_dev(const char *root, int bind_host, char *err, size_t errlen) {
  char dev[PATH_MAX], path[PATH_MAX];
  snprintf(dev, sizeof dev, "%s/dev", root);
  mkdir(dev, 0755);
  if (mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") < 0)
    FAIL("mount /dev: %s", strerror(errno));
  mode_t old = umask(0);
  for (int i = 0; i < NDEVICES; i++) {
    if (!devices[i].name) continue;
    snprintf(path, sizeof path, "%s/%s", dev, devices[i].name);
    if (bind_host) {
      /* In a user namespace a node made here would not open (its tmpfs is nodev): the host's own is bound. */
      char host[64];
      snprintf(host, sizeof host, "/dev/%s", devices[i].name);
      int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
      if (fd >= 0) close(fd);
      if (mount(host, path, NULL, MS_BIND, NULL) < 0) {
        umask(old);
        FAIL("bind /dev/%s: %s", devices[i].name, strerror(errno));
      }
      continue;
    }
    if (mknod(path, S_IFCHR | 0666, makedev(devices[i].major, devices[i].minor)) < 0) {
      umask(old);
      FAIL("mknod /dev/%s: %s", devices[i].name, strerror(errno));
    }
  }
  umask(old);
  snprintf(path, sizeof path, "%s/pts", dev);
  mkdir(path, 0755);
  /* A private devpts instance; optional, so a kernel without it still runs containers. */
  if (mount("devpts", path, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620") == 0) {
    snprintf(path, sizeof path, "%s/ptmx", dev);
    if (symlink("pts/ptmx", path) < 0) { /* optional */ }
  }
  /* /dev is a size-limited tmpfs already, so /dev/shm is a directory in it: one mount less to set up and tear down. */
  snprintf(path, sizeof path, "%s/shm", dev);
  if (mkdir(path, 0755) == 0) chmod(path, 01777);
  static const char *links[][2] = {
      {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
  };
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "%s/%s", dev, links[i][1]);
    if (symlink(links[i][0], path) < 0) { /* optional */ }
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

/* v1: deny everything, then allow the table ("m" too: init makes the nodes after it joined the cgroup). */
static int allow_v1(const char *dir, char *err, size_t errlen) {
  if (write_rule(dir, "devices.deny", "a", err, errlen) < 0) return -1;
  for (int i = 0; i < NDEVICES; i++) {
    char rule[64], minor[16];
    if (devices[i].minor < 0) snprintf(minor, sizeof minor, "*");
    else snprintf(minor, sizeof minor, "%d", devices[i].minor);
    snprintf(rule, sizeof rule, "c %d:%s rwm", devices[i].major, minor);
    if (write_rule(dir, "devices.allow", rule, err, errlen) < 0) return -1;
  }
  return 0;
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

/* `dir` is a v1 devices cgroup (it has devices.deny) or a v2 cgroup (a BPF program is attached to it). */
int devices_restrict(const char *dir, char *err, size_t errlen) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/devices.deny", dir);
  if (access(path, F_OK) == 0) return allow_v1(dir, err, errlen);
  return attach_bpf(dir, err, errlen);
}
