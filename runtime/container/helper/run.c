/*
 * `run`: the supervisor. It stays in the host namespaces, creates the container with clone(), puts it in its
 * cgroups, starts the port forwarders, reports "started", then waits and reports "exited" after cleaning up.
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
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"

struct child_args {
  struct config *cfg;
  int go_write; /* the supervisor's end, closed in the child */
  int ready_read;
  int go_fd;    /* read end: the supervisor writes one byte once it holds the container's netns */
  int ready_fd; /* write end, close-on-exec: setup errors are written here; EOF alone means the command runs */
  int log_fd;
};

static int child_main(void *arg) {
  struct child_args *a = arg;
  char err[1024];
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  userns_close_layers(a->cfg); /* mounts of the host's image layers: the container must never hold one */
  close(a->go_write);
  close(a->ready_read);
  if (a->cfg->userns_base > 0) close(a->cfg->mount_sock[0]);
  if (a->cfg->sysfs_fd >= 0) close(a->cfg->sysfs_fd); /* the supervisor sends it over mount_sock */
  for (int i = 0; i < a->cfg->nports; i++) {
    close(a->cfg->ports[i].unix_fd);
    if (a->cfg->ports[i].tcp_fd >= 0) close(a->cfg->ports[i].tcp_fd);
  }
  char go;
  if (read(a->go_fd, &go, 1) != 1) _exit(125);
  close(a->go_fd);
  /* Joined before anything else runs here, so every process of the container is counted and limited. */
  if (cgroups_join_self(a->cfg, err, sizeof err) < 0) goto fail;
  int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(a->log_fd, STDOUT_FILENO) < 0 ||
      dup2(a->log_fd, STDERR_FILENO) < 0) {
    snprintf(err, sizeof err, "redirect output: %s", strerror(errno));
    goto fail;
  }
  if (a->cfg->hostname && sethostname(a->cfg->hostname, strlen(a->cfg->hostname)) < 0) {
    snprintf(err, sizeof err, "sethostname: %s", strerror(errno));
    goto fail;
  }
  /*
   * A pooled namespace has its loopback up already (and is not the container's to change). A fresh one opens its
   * low ports to every uid of a user namespace, as a pooled one does (netns.c), so both behave the same; written
   * through the host's /proc, before the container's own (with /proc/sys read-only) replaces it.
   */
  if (!a->cfg->netns_pooled && loopback_up(err, sizeof err) < 0) goto fail;
  if (!a->cfg->netns_pooled && a->cfg->userns_base > 0 && netns_set_low_ports(0, err, sizeof err) < 0) goto fail;
  if (setup_rootfs(a->cfg, err, sizeof err) < 0) goto fail;
  if (a->cfg->userns_base > 0) {
    close(a->cfg->mount_sock[1]);
    /*
     * Becoming the namespace's root changed this process's uids, which clears its parent-death signal: arm it
     * again, then check that the supervisor did not die in between (its end of the ready pipe would be closed).
     */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    struct pollfd supervisor = {.fd = a->ready_fd, .events = 0};
    if (poll(&supervisor, 1, 0) > 0 && (supervisor.revents & POLLERR)) _exit(125);
  }
  container_init(a->cfg, a->ready_fd);
fail:
  if (write(a->ready_fd, err, strlen(err)) < 0) { /* supervisor sees EOF and the exit code */ }
  _exit(125);
}

static void fail_event(const char *msg) {
  char esc[2048];
  json_escape(esc, sizeof esc, msg);
  status_event("{\"event\":\"error\",\"message\":\"%s\"}", esc);
}

static void reap(pid_t pid) {
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
}

/* Field 22 of /proc/self/stat (start time in clock ticks): tau pairs it with the pid to survive pid reuse. */
static void self_start_time(char *out, size_t len) {
  char buf[1024];
  snprintf(out, len, "0");
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return;
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  for (int field = 2; p && field < 22; field++) p = strchr(p + 1, ' ');
  if (p) snprintf(out, len, "%.*s", (int)strcspn(p + 1, " "), p + 1);
}

int run_container(struct config *cfg) {
  char err[1024];
  signal(SIGPIPE, SIG_IGN);
  /* Scratch dirs of the overlay; tau creates them too for single starts, so existing ones are fine. */
  const char *dirs[] = {cfg->upperdir, cfg->workdir, cfg->rootfs};
  for (int i = 0; i < 3; i++) {
    if (mkdir(dirs[i], 0755) < 0 && errno != EEXIST) die_event("create container directory", errno);
  }
  int log_fd = open(cfg->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) die_event("open log", errno);
  if (ports_bind(cfg, err, sizeof err) < 0) {
    fail_event(err);
    return 125;
  }
  if (cgroups_create(cfg, err, sizeof err) < 0) {
    fail_event(err);
    cgroups_remove(cfg);
    return 125;
  }
  int go[2], ready[2];
  if (pipe2(go, O_CLOEXEC) < 0 || pipe2(ready, O_CLOEXEC) < 0) die_event("pipe", errno);
  if (cfg->userns_base > 0) {
    /* The upper dir is the container root's (see userns.c); the socket carries the mounts made for it. */
    uid_t base = (uid_t)cfg->userns_base;
    if (chown(cfg->upperdir, base, base) < 0) die_event("give the upper dir to the container's root", errno);
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cfg->mount_sock) < 0) die_event("socketpair", errno);
  }
  /* Signals are blocked from here on and handled with sigwaitinfo, so none can slip between clone and wait. */
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &all, NULL);
  size_t stack_size = 256 * 1024;
  char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) die_event("allocate stack", errno);
  struct child_args args = {.cfg = cfg, .go_write = go[1], .ready_read = ready[0], .go_fd = go[0], .ready_fd = ready[1], .log_fd = log_fd};
  int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD;
  if (cfg->userns_base > 0) flags |= CLONE_NEWUSER;
  /* In a pre-made network namespace (netns.c) while clone() runs, so that the container is born in it. */
  int host_netns = netns_join_pooled(cfg, err, sizeof err);
  if (host_netns == -2) {
    cgroups_remove(cfg);
    fail_event(err);
    return 125;
  }
  if (host_netns < 0) flags |= CLONE_NEWNET;
  pid_t init = clone(child_main, stack + stack_size, flags, &args);
  int clone_errno = errno;
  netns_leave(host_netns);
  if (init < 0) {
    cgroups_remove(cfg);
    die_event("create namespaces (clone)", clone_errno);
  }
  close(go[0]);
  close(ready[1]);
  if (cfg->userns_base > 0) close(cfg->mount_sock[1]);
  /* Opened now, while the init surely exists: a command that exits at once must not break port setup. */
  char nspath[64];
  snprintf(nspath, sizeof nspath, "/proc/%d/ns/net", init);
  int netns = open(nspath, O_RDONLY | O_CLOEXEC);
  int ok = netns >= 0;
  if (!ok) snprintf(err, sizeof err, "open container network namespace: %s", strerror(errno));
  if (ok && cfg->userns_base > 0 && userns_send_mounts(cfg, init, err, sizeof err) < 0) ok = 0;
  if (cfg->userns_base > 0) close(cfg->mount_sock[0]);
  if (cfg->sysfs_fd >= 0) close(cfg->sysfs_fd); /* not sent: the start failed before */
  userns_close_layers(cfg);
  if (ok && write(go[1], "g", 1) != 1) {
    snprintf(err, sizeof err, "start container: %s", strerror(errno));
    ok = 0;
  }
  close(go[1]);
  if (ok) {
    /* Setup and exec errors arrive as text; plain EOF means the command was exec'd. */
    char msg[1024];
    ssize_t n, total = 0;
    while ((n = read(ready[0], msg + total, sizeof msg - 1 - total)) > 0) total += n;
    msg[total] = 0;
    if (total > 0) {
      snprintf(err, sizeof err, "%s", msg);
      ok = 0;
    }
  }
  close(ready[0]);
  int fwd_pids[32], nfwd = 0;
  if (ok && (nfwd = ports_start(cfg, netns, fwd_pids, err, sizeof err)) < 0) {
    nfwd = 0;
    ok = 0;
  }
  if (netns >= 0) close(netns);
  if (!ok) {
    kill(init, SIGKILL);
    reap(init);
    cgroups_remove(cfg);
    fail_event(err);
    return 125;
  }
  char ports[1024] = "";
  size_t off = 0;
  for (int i = 0; i < cfg->nports; i++) {
    off += snprintf(ports + off, sizeof ports - off, "%s{\"container\":%d,\"host\":%d}", i ? "," : "",
                    cfg->ports[i].container_port, cfg->ports[i].host_port < 0 ? 0 : cfg->ports[i].bound_host_port);
  }
  char start[32], netns_name[64] = "";
  self_start_time(start, sizeof start);
  ssize_t nl = readlink(nspath, netns_name, sizeof netns_name - 1);
  netns_name[nl > 0 ? nl : 0] = 0;
  status_event("{\"event\":\"started\",\"pid\":%d,\"supervisor\":%d,\"supervisorStart\":\"%s\",\"netns\":\"%s\","
               "\"ports\":[%s]}",
               init, getpid(), start, netns_name, ports);
  int code = -1;
  while (code < 0) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      /* stop/kill from tau: the container's init forwards it to the command */
      kill(init, sig);
      continue;
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != init) continue;
      code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
  int oom = cgroups_oom_killed(cfg);
  for (int i = 0; i < nfwd; i++) kill(fwd_pids[i], SIGKILL);
  for (int i = 0; i < nfwd; i++) reap(fwd_pids[i]);
  for (int i = 0; i < cfg->nports; i++) unlink(cfg->ports[i].socket_path);
  cgroups_remove(cfg);
  sigprocmask(SIG_SETMASK, &none, NULL);
  status_event("{\"event\":\"exited\",\"code\":%d,\"oomKilled\":%s}", code, oom ? "true" : "false");
  return code;
}
