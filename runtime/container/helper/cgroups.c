/*
 * cgroup directories and limit files are chosen by tau (it knows v1, v2 and hybrid layouts); the helper only
 * creates them, writes the values, moves the container in, and removes them after the container is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "helper.h"

static int write_file(const char *path, const char *value) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, value, strlen(value));
  int saved = errno;
  close(fd);
  errno = saved;
  return n < 0 ? -1 : 0;
}

/* The v1 devices cgroup is shared by all containers (devices.c): joined like the others, never removed. */
static int device_cgroup_shared(const struct config *cfg) {
  for (int i = 0; i < cfg->ncgroups; i++) {
    if (strcmp(cfg->cgroup_dirs[i], cfg->device_cgroup) == 0) return 0;
  }
  return 1;
}

int cgroups_create(const struct config *cfg, char *err, size_t errlen) {
  for (int i = 0; i < cfg->ncgroups; i++) {
    if (mkdir(cfg->cgroup_dirs[i], 0755) < 0 && errno != EEXIST) {
      snprintf(err, errlen, "create cgroup %s: %s", cfg->cgroup_dirs[i], strerror(errno));
      return -1;
    }
  }
  for (int i = 0; i < cfg->nsettings; i++) {
    if (write_file(cfg->cgroup_settings[i].file, cfg->cgroup_settings[i].value) < 0) {
      snprintf(err, errlen, "write %s to %s: %s", cfg->cgroup_settings[i].value, cfg->cgroup_settings[i].file,
               strerror(errno));
      return -1;
    }
  }
  if (cfg->device_cgroup && devices_restrict(cfg->device_cgroup, device_cgroup_shared(cfg), err, errlen) < 0)
    return -1;
  return 0;
}

/*
 * The calling process moves itself. Writing "0" to a v1 `tasks` file migrates one thread without taking the
 * kernel's global threadgroup lock, whose write side waits for an RCU grace period (~15-20 ms per write to
 * cgroup.procs, most of a container's start time). The caller is single-threaded, so moving its only thread
 * moves the process. v2 has no `tasks` file: there cgroup.procs is used.
 */
static int join(const char *dir, char *err, size_t errlen) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/tasks", dir);
  int rc = write_file(path, "0");
  if (rc < 0 && errno == ENOENT) {
    snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    rc = write_file(path, "0");
  }
  if (rc < 0) FAIL("join cgroup %s: %s", dir, strerror(errno));
  return 0;
}

int cgroups_join_self(const struct config *cfg, char *err, size_t errlen) {
  for (int i = 0; i < cfg->ncgroups; i++) {
    if (join(cfg->cgroup_dirs[i], err, errlen) < 0) return -1;
  }
  if (cfg->device_cgroup && device_cgroup_shared(cfg)) return join(cfg->device_cgroup, err, errlen);
  return 0;
}

/* v1 reports "oom_kill N" in memory.oom_control, v2 in memory.events. */
int cgroups_oom_killed(const struct config *cfg) {
  static const char *files[] = {"memory.oom_control", "memory.events"};
  char path[PATH_MAX], buf[1024];
  for (int i = 0; i < cfg->ncgroups; i++) {
    for (int f = 0; f < 2; f++) {
      snprintf(path, sizeof path, "%s/%s", cfg->cgroup_dirs[i], files[f]);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n = read(fd, buf, sizeof buf - 1);
      close(fd);
      if (n <= 0) continue;
      buf[n] = 0;
      char *p = strstr(buf, "oom_kill ");
      if (p && atoi(p + 9) > 0) return 1;
    }
  }
  return 0;
}

/* A cgroup can be removed only once its last task is gone; exiting tasks may linger for a moment. */
void cgroups_remove(const struct config *cfg) {
  char path[PATH_MAX], buf[4096];
  for (int i = 0; i < cfg->ncgroups; i++) {
    for (int attempt = 0; attempt < 200; attempt++) {
      if (rmdir(cfg->cgroup_dirs[i]) == 0 || errno == ENOENT) break;
      if (errno != EBUSY) break;
      snprintf(path, sizeof path, "%s/cgroup.procs", cfg->cgroup_dirs[i]);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
          buf[n] = 0;
          for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) kill(atoi(line), 9);
        }
      }
      struct timespec ts = {0, 5 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
}
