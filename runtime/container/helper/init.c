/*
 * PID 1 of the container. The kernel gives a namespace's init no default signal actions, so a plain server as
 * PID 1 would ignore SIGTERM; instead this init starts the command as PID 2, forwards signals to it, reaps every
 * orphan, and exits with the command's status (which ends the namespace and kills whatever is left).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"

extern char **environ;

static void report_exec_failure(int fd, const char *what, const char *detail) {
  char msg[1024];
  int n = snprintf(msg, sizeof msg, "%s: %s", what, detail);
  if (n > 0 && write(fd, msg, (size_t)n) < 0) { /* tau sees EOF without text; it reports the exit code */ }
}

/* The child inherits init's confinement (bounding set, capabilities, no_new_privs, seccomp): nothing to redo. */
static void start_command(const struct config *cfg, int ready_fd, const sigset_t *none) {
  sigprocmask(SIG_SETMASK, none, NULL);
  setsid();
  if (cfg->cwd && chdir(cfg->cwd) < 0) {
    report_exec_failure(ready_fd, cfg->cwd, "working directory does not exist in the image");
    _exit(126);
  }
  /* execvp searches the PATH of environ, so the container's environment has to be the current one. */
  environ = (char **)cfg->env;
  execvp(cfg->argv[0], cfg->argv);
  report_exec_failure(ready_fd, cfg->argv[0], errno == ENOENT ? "command not found in the image" : strerror(errno));
  _exit(127);
}

static void ignore_signal(int sig) { (void)sig; }

int container_init(const struct config *cfg, int ready_fd) {
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &all, NULL);
  /* Handlers (never run while blocked) make sure the kernel queues signals to PID 1 instead of dropping them. */
  for (int s = 1; s < NSIG; s++) {
    if (s == SIGKILL || s == SIGSTOP || s == SIGCHLD) continue;
    signal(s, ignore_signal);
  }
  /*
   * Confine init itself before it forks: the command inherits all of it, so the work is done once per container
   * (init needs nothing the deny-list or the kept capabilities take away: it only waits, reaps and kills).
   */
  char err[512];
  if (drop_privileges(err, sizeof err) < 0) {
    report_exec_failure(ready_fd, "security setup", err);
    _exit(126);
  }
  pid_t child = fork();
  if (child < 0) {
    report_exec_failure(ready_fd, "fork", strerror(errno));
    _exit(126);
  }
  if (child == 0) start_command(cfg, ready_fd, &none);
  close(ready_fd);
  for (;;) {
    siginfo_t info;
    int sig = sigwaitinfo(&all, &info);
    if (sig < 0) continue;
    if (sig != SIGCHLD) {
      kill(child, sig);
      continue;
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
      if (pid != child) continue;
      if (WIFEXITED(status)) _exit(WEXITSTATUS(status));
      _exit(128 + WTERMSIG(status));
    }
  }
}
