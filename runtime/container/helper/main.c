/*
 * tau-ns-helper, the only privileged piece of tau's container support. Usage (built and called by tau):
 *   tau-ns-helper run --lower L1:L2 --upper U --work W --rootfs R --log F --status F [--hostname H] [--cwd D]
 *                     [--mount SRC DST ro|rw]... [--port CPORT HOSTPORT SOCKET]... [--cgroup DIR]...
 *                     [--cgset FILE VALUE]... [--device-cgroup DIR] [--userns BASE SHIFTED] [--env K=V]...
 *                     [--netns-pool SOCKET] [--batch ID1,ID2,...] -- CMD [ARGS...]
 *     --device-cgroup: only the devices in devices.c may be opened or created there: a v1 devices cgroup shared by
 *     all containers (made and filled if needed, joined, never removed), or one of the --cgroup dirs on v2.
 *     --userns: container uids 0..65535 are host uids BASE..; the top SHIFTED layers are stored in host uids.
 *     --netns-pool: ask the pool on SOCKET for a pre-made network namespace (netns.c); none there: a new one.
 *     --batch starts one container per id, each under its own supervisor; "{}" in the per-container paths
 *     (--upper --work --rootfs --log --status, port sockets, cgroup dirs and files) and --hostname becomes
 *     the id.
 *   tau-ns-helper exec --pid PID [--cgroup DIR]... [--device-cgroup DIR] [--env K=V]... [--cwd D] -- CMD [ARGS...]
 *   tau-ns-helper netns-pool SOCKET TARGET  (keeps TARGET network namespaces made ahead, until stdin closes)
 *   tau-ns-helper whiteout PATH...   (overlay whiteout: a 0/0 character device, for image layers)
 *   tau-ns-helper opaque DIR...      (overlay opaque directory marker, for image layers)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "helper.h"

static void usage(const char *msg) {
  fprintf(stderr, "tau-ns-helper: %s (this program is started by tau; see runtime/container/helper/main.c)\n", msg);
  exit(2);
}

static const char *need(int argc, char **argv, int i) {
  if (i >= argc) usage("missing value");
  return argv[i];
}

static void parse(struct config *cfg, int argc, char **argv) {
  int i = 2;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--lower") == 0) cfg->lowerdirs = need(argc, argv, ++i);
    else if (strcmp(a, "--upper") == 0) cfg->upperdir = need(argc, argv, ++i);
    else if (strcmp(a, "--work") == 0) cfg->workdir = need(argc, argv, ++i);
    else if (strcmp(a, "--rootfs") == 0) cfg->rootfs = need(argc, argv, ++i);
    else if (strcmp(a, "--log") == 0) cfg->log_path = need(argc, argv, ++i);
    else if (strcmp(a, "--status") == 0) cfg->status_path = need(argc, argv, ++i);
    else if (strcmp(a, "--hostname") == 0) cfg->hostname = need(argc, argv, ++i);
    else if (strcmp(a, "--cwd") == 0) cfg->cwd = need(argc, argv, ++i);
    else if (strcmp(a, "--pid") == 0) cfg->target_pid = atoi(need(argc, argv, ++i));
    else if (strcmp(a, "--batch") == 0) cfg->batch = need(argc, argv, ++i);
    else if (strcmp(a, "--netns-pool") == 0) cfg->netns_pool = need(argc, argv, ++i);
    else if (strcmp(a, "--mount") == 0) {
      if (cfg->nmounts >= MAX_ITEMS) usage("too many mounts");
      struct bind_mount *m = &cfg->mounts[cfg->nmounts++];
      m->source = need(argc, argv, ++i);
      m->target = need(argc, argv, ++i);
      m->readonly = strcmp(need(argc, argv, ++i), "ro") == 0;
    } else if (strcmp(a, "--port") == 0) {
      if (cfg->nports >= 16) usage("too many ports");
      struct port_map *p = &cfg->ports[cfg->nports++];
      p->container_port = atoi(need(argc, argv, ++i));
      p->host_port = atoi(need(argc, argv, ++i));
      p->socket_path = need(argc, argv, ++i);
    } else if (strcmp(a, "--cgroup") == 0) {
      if (cfg->ncgroups >= 16) usage("too many cgroups");
      cfg->cgroup_dirs[cfg->ncgroups++] = need(argc, argv, ++i);
    } else if (strcmp(a, "--userns") == 0) {
      cfg->userns_base = atol(need(argc, argv, ++i));
      cfg->shifted_lowers = atoi(need(argc, argv, ++i));
    } else if (strcmp(a, "--device-cgroup") == 0) {
      cfg->device_cgroup = need(argc, argv, ++i);
    } else if (strcmp(a, "--cgset") == 0) {
      if (cfg->nsettings >= MAX_ITEMS) usage("too many cgroup settings");
      struct cgroup_setting *s = &cfg->cgroup_settings[cfg->nsettings++];
      s->file = need(argc, argv, ++i);
      s->value = need(argc, argv, ++i);
    } else if (strcmp(a, "--env") == 0) {
      if (cfg->nenv >= MAX_ENV) usage("too many environment variables");
      cfg->env[cfg->nenv++] = (char *)need(argc, argv, ++i);
    } else {
      usage("unknown option");
    }
  }
  cfg->env[cfg->nenv] = NULL;
  if (i >= argc) usage("missing command after --");
  cfg->argv = argv + i;
}

/* "{}" -> id; the result is only ever used by one forked supervisor, so it is never freed. */
static const char *subst(const char *s, const char *id) {
  if (!s || !strstr(s, "{}")) return s;
  size_t idlen = strlen(id), n = 0;
  for (const char *p = s; (p = strstr(p, "{}")); p += 2) n++;
  char *out = malloc(strlen(s) + n * idlen + 1), *o = out;
  if (!out) return s;
  for (const char *p = s; *p;) {
    if (p[0] == '{' && p[1] == '}') {
      memcpy(o, id, idlen);
      o += idlen;
      p += 2;
    } else {
      *o++ = *p++;
    }
  }
  *o = 0;
  return out;
}

/*
 * One process per container, all forked from here at once: starting N copies costs one exec of the helper instead
 * of N, and tau does its shared work once. Each child is an ordinary supervisor for its container.
 */
static int run_batch(struct config *cfg) {
  userns_prepare_layers(cfg); /* once for all (userns.c); every supervisor closes its copy after its overlay */
  char *ids = strdup(cfg->batch);
  int count = 1;
  for (const char *c = ids; *c; c++) count += *c == ',';
  /* One request to the pool for the whole batch, rather than one per supervisor to a single busy process. */
  struct pooled *given = calloc((size_t)count, sizeof *given);
  int ngiven = cfg->netns_pool && given ? netns_pool_take(cfg->netns_pool, count, given) : 0;
  int forked = 0, index = 0;
  for (char *save = NULL, *id = strtok_r(ids, ",", &save); id; id = strtok_r(NULL, ",", &save), index++) {
    pid_t pid = fork();
    if (pid < 0) {
      status_set_id(id);
      status_event("{\"event\":\"error\",\"message\":\"fork supervisor: %s\"}", strerror(errno));
      continue;
    }
    if (pid > 0) {
      forked++;
      continue;
    }
    /* This supervisor's namespace, if the pool had one for it; the others' are not its to hold. */
    for (int i = 0; i < ngiven; i++) {
      if (i == index) continue;
      close(given[i].netns);
      close(given[i].sysfs);
    }
    if (index < ngiven) cfg->netns_given = given[index];
    cfg->upperdir = subst(cfg->upperdir, id);
    cfg->workdir = subst(cfg->workdir, id);
    cfg->rootfs = subst(cfg->rootfs, id);
    cfg->log_path = subst(cfg->log_path, id);
    cfg->status_path = subst(cfg->status_path, id);
    cfg->hostname = subst(cfg->hostname, id);
    for (int i = 0; i < cfg->nports; i++) cfg->ports[i].socket_path = subst(cfg->ports[i].socket_path, id);
    for (int i = 0; i < cfg->ncgroups; i++) cfg->cgroup_dirs[i] = subst(cfg->cgroup_dirs[i], id);
    cfg->device_cgroup = subst(cfg->device_cgroup, id);
    for (int i = 0; i < cfg->nsettings; i++) cfg->cgroup_settings[i].file = subst(cfg->cgroup_settings[i].file, id);
    status_set_id(id);
    status_init(cfg->status_path);
    exit(run_container(cfg));
  }
  return forked > 0 ? 0 : 125; /* what the pool gave is closed with this process; each supervisor has its own */
}

int main(int argc, char **argv) {
  if (argc < 2) usage("missing mode");
  static struct config cfg = {.sysfs_fd = -1, .netns_given = {-1, -1}};
  for (int i = 0; i < MAX_ITEMS; i++) cfg.layer_fds[i] = -1;
  if (strcmp(argv[1], "netns-pool") == 0) {
    if (argc != 4 || atoi(argv[3]) < 1) usage("netns-pool needs SOCKET TARGET");
    return netns_pool_serve(argv[2], atoi(argv[3]));
  }
  if (strcmp(argv[1], "whiteout") == 0 || strcmp(argv[1], "opaque") == 0) {
    int whiteout = argv[1][0] == 'w';
    for (int i = 2; i < argc; i++) {
      int rc = whiteout ? mknod(argv[i], S_IFCHR | 0, makedev(0, 0))
                        : setxattr(argv[i], "trusted.overlay.opaque", "y", 1, 0);
      if (rc < 0) {
        fprintf(stderr, "tau-ns-helper: %s %s: %s\n", argv[1], argv[i], strerror(errno));
        return 1;
      }
    }
    return 0;
  }
  parse(&cfg, argc, argv);
  if (strcmp(argv[1], "exec") == 0) {
    if (cfg.target_pid <= 0) usage("exec needs --pid");
    return exec_in_container(&cfg);
  }
  if (strcmp(argv[1], "run") != 0) usage("unknown mode");
  if (!cfg.lowerdirs || !cfg.upperdir || !cfg.workdir || !cfg.rootfs || !cfg.log_path)
    usage("run needs --lower, --upper, --work, --rootfs and --log");
  if (!cfg.batch) {
    status_init(cfg.status_path);
    return run_container(&cfg);
  }
  return run_batch(&cfg);
}
