/* `exec`: run a command inside a running container (its namespaces, cgroups and the same confinement). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"

extern char **environ;

int exec_in_container(struct config *cfg) {
  /* Open every namespace first: after joining the mount namespace, /proc is the container's. */
  static const struct { const char *name; int type; } kinds[] = {
      {"ipc", CLONE_NEWIPC}, {"uts", CLONE_NEWUTS}, {"net", CLONE_NEWNET}, {"pid", CLONE_NEWPID}, {"mnt", CLONE_NEWNS},
  };
  int fds[5];
  char path[64], err[1024];
  for (int i = 0; i < 5; i++) {
    snprintf(path, sizeof path, "/proc/%d/ns/%s", cfg->target_pid, kinds[i].name);
    fds[i] = open(path, O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) {
      fprintf(stderr, "tau-ns-helper: container process %d is gone: %s\n", cfg->target_pid, strerror(errno));
      return 125;
    }
  }
  if (cgroups_join_self(cfg, err, sizeof err) < 0) {
    fprintf(stderr, "tau-ns-helper: %s\n", err);
    return 125;
  }
  /*
   * The network namespace first, as the host's root: a pre-made one (netns.c) belongs to the host's user namespace,
   * which the container's root has no say over.
   */
  if (setns(fds[2], CLONE_NEWNET) < 0) {
    fprintf(stderr, "tau-ns-helper: join net namespace: %s\n", strerror(errno));
    return 125;
  }
  /* A container with its own user namespace: join it next (the others belong to it), then be its root. */
  snprintf(path, sizeof path, "/proc/%d/ns/user", cfg->target_pid);
  char theirs[64] = "", ours[64] = "";
  ssize_t n1 = readlink(path, theirs, sizeof theirs - 1), n2 = readlink("/proc/self/ns/user", ours, sizeof ours - 1);
  if (n1 > 0 && n2 > 0 && strcmp(theirs, ours) != 0) {
    int userns = open(path, O_RDONLY | O_CLOEXEC);
    if (userns < 0 || setns(userns, CLONE_NEWUSER) < 0 || userns_become_root(err, sizeof err) < 0) {
      fprintf(stderr, "tau-ns-helper: join the container's user namespace: %s\n", userns < 0 ? strerror(errno) : err);
      return 125;
    }
    close(userns);
  }
  for (int i = 0; i < 5; i++) {
    if (kinds[i].type == CLONE_NEWNET) {
      close(fds[i]);
      continue;
    }
    if (setns(fds[i], kinds[i].type) < 0) {
      fprintf(stderr, "tau-ns-helper: join %s namespace: %s\n", kinds[i].name, strerror(errno));
      return 125;
    }
    close(fds[i]);
  }
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &all, NULL);
  pid_t child = fork(); /* joining a pid namespace applies to children only */
  if (child < 0) {
    perror("tau-ns-helper: fork");
    return 125;
  }
  if (child == 0) {
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (chdir(cfg->cwd ? cfg->cwd : "/") < 0 && chdir("/") < 0) _exit(126);
    if (drop_privileges(err, sizeof err) < 0) {
      fprintf(stderr, "tau-ns-helper: %s\n", err);
      _exit(126);
    }
    environ = cfg->env;
    execvp(cfg->argv[0], cfg->argv);
    fprintf(stderr, "tau-ns-helper: %s: %s\n", cfg->argv[0], strerror(errno));
    _exit(127);
  }
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    int status;
    if (waitpid(child, &status, WNOHANG) == child) {
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}
