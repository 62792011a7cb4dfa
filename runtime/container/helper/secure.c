/* Capabilities and the seccomp deny-list applied to every process started in a container (init included). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "helper.h"

/*
 * What a container's root keeps (podman's default set). Each only acts inside the container's own namespaces and
 * files (its rootfs, and host paths only through mounts the user listed):
 *   CHOWN, DAC_OVERRIDE, FOWNER, FSETID  root owns and may change every file of its rootfs (package installs,
 *                                        chown of data dirs before dropping to a service user);
 *   SETUID, SETGID                       servers switch to an unprivileged user after start;
 *   SETPCAP                              lets a process drop capabilities from its bounding set before exec;
 *   SETFCAP                              package installs set file capabilities (no_new_privs makes exec
 *                                        ignore them, so they grant nothing);
 *   KILL                                 signals other users' processes, which all live in its pid namespace;
 *   NET_BIND_SERVICE                     ports below 1024, in its own network namespace;
 *   SYS_CHROOT                           daemons that chroot into a subtree of the rootfs (mount is refused).
 * Dropped from the list common runtimes started with: MKNOD (device nodes: the device cgroup refuses any but
 * /dev's anyway), NET_RAW (raw sockets: only loopback to reach, and a history of kernel bugs) and AUDIT_WRITE (the
 * audit log is the host's, not namespaced).
 */
static const int kept_caps[] = {
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_FSETID, CAP_SETUID,  CAP_SETGID,
    CAP_SETPCAP, CAP_SETFCAP,    CAP_KILL,   CAP_NET_BIND_SERVICE,    CAP_SYS_CHROOT,
};

/*
 * Calls that would let a container escape, reconfigure the kernel or spy on other processes. Most also need a
 * capability containers do not keep; the list is the second wall. pidfd_getfd and process_madvise reach into
 * another process like ptrace; io_uring is a large kernel surface that a plain server does not need.
 */
static const int denied[] = {
    SYS_mount, SYS_umount2, SYS_pivot_root, SYS_reboot, SYS_kexec_load, SYS_ptrace, SYS_bpf, SYS_init_module,
    SYS_finit_module, SYS_delete_module, SYS_swapon, SYS_swapoff, SYS_unshare, SYS_setns, SYS_open_by_handle_at,
    SYS_name_to_handle_at, SYS_keyctl, SYS_add_key, SYS_request_key, SYS_perf_event_open, SYS_acct,
    SYS_settimeofday, SYS_clock_settime, SYS_syslog, SYS_userfaultfd, SYS_quotactl, SYS_process_vm_readv,
    SYS_process_vm_writev, SYS_kcmp, SYS_lookup_dcookie, SYS_pidfd_getfd, SYS_process_madvise, SYS_io_uring_setup,
    SYS_io_uring_enter, SYS_io_uring_register, SYS_fanotify_init, SYS_vhangup,
#ifdef SYS_quotactl_fd
    SYS_quotactl_fd,
#endif
#ifdef SYS_kexec_file_load
    SYS_kexec_file_load,
#endif
#ifdef SYS_iopl
    SYS_iopl, SYS_ioperm,
#endif
#ifdef SYS_open_tree
    SYS_open_tree, SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount, SYS_fspick,
#endif
#ifdef SYS_mount_setattr
    SYS_mount_setattr,
#endif
};

#if defined(__x86_64__)
#define TAU_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TAU_AUDIT_ARCH AUDIT_ARCH_AARCH64
#else
#error "tau-ns-helper: add the seccomp audit arch for this CPU"
#endif

#define NS_FLAGS (CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP)

static int install_seccomp(char *err, size_t errlen) {
  enum { N = sizeof denied / sizeof denied[0] };
  struct sock_filter f[N + 16];
  int i = 0;
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TAU_AUDIT_ARCH, 1, 0);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#if defined(__x86_64__)
  /* The x32 ABI reuses numbers with bit 30 set: refuse it instead of listing every call twice. */
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
#endif
  /* clone3 passes flags in memory seccomp cannot read: report it missing so libc falls back to clone. */
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone3, 0, 1);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
  /* clone itself is fine, but not with flags that create namespaces. */
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 4);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
  f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  for (int k = 0; k < N; k++) f[i++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, denied[k], N - k, 0);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
  f[i++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM);
  struct sock_fprog prog = {.len = (unsigned short)i, .filter = f};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
    snprintf(err, errlen, "install seccomp filter: %s", strerror(errno));
    return -1;
  }
  return 0;
}

int drop_privileges(char *err, size_t errlen) {
  unsigned long long keep = 0;
  for (size_t i = 0; i < sizeof kept_caps / sizeof kept_caps[0]; i++) keep |= 1ULL << kept_caps[i];
  for (int cap = 0; cap < 64; cap++) {
    if (keep & (1ULL << cap)) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
      if (errno == EINVAL) break; /* past the last capability this kernel knows */
      snprintf(err, errlen, "drop capability %d: %s", cap, strerror(errno));
      return -1;
    }
  }
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  for (int w = 0; w < 2; w++) {
    unsigned int bits = (unsigned int)(keep >> (32 * w));
    data[w].effective = data[w].permitted = data[w].inheritable = bits;
  }
  if (syscall(SYS_capset, &hdr, data) < 0) {
    snprintf(err, errlen, "set capabilities: %s", strerror(errno));
    return -1;
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
    snprintf(err, errlen, "no_new_privs: %s", strerror(errno));
    return -1;
  }
  return install_seccomp(err, errlen);
}
