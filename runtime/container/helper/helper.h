/*
 * tau-ns-helper: starts one container (namespaces, overlay rootfs, cgroups, seccomp, capabilities, a tiny init)
 * and reports to tau through JSON lines on stdout (the "status pipe"). tau drives it only through argv.
 */
#ifndef TAU_NS_HELPER_H
#define TAU_NS_HELPER_H

#include <stddef.h>
#include <sys/types.h>

#define MAX_ITEMS 64
#define MAX_ENV 512

struct bind_mount {
  const char *source;
  const char *target;
  int readonly;
};

struct port_map {
  int container_port;
  int host_port; /* -1: no TCP listener on the host, 0: pick a free port */
  const char *socket_path;
  int unix_fd;   /* listening Unix socket bound in the host filesystem */
  int tcp_fd;    /* listening TCP socket on host 127.0.0.1, or -1 */
  int bound_host_port;
};

/* What the network namespace pool hands out (netns.c): a namespace, and /sys as seen from inside it. */
struct pooled {
  int netns;
  int sysfs;
};

struct cgroup_setting {
  const char *file;
  const char *value;
};

struct config {
  const char *hostname;
  const char *lowerdirs; /* colon separated, top layer first */
  const char *upperdir;
  const char *workdir;
  const char *rootfs; /* empty directory the overlay is mounted on (inside the new mount namespace) */
  const char *log_path;
  const char *status_path;
  const char *cwd;
  int target_pid; /* exec: the container's init */
  const char *batch; /* run: comma-separated container ids, one supervisor each */
  const char *netns_pool; /* run: the socket of a pool of pre-made network namespaces (netns.c), if any */
  int netns_pooled;       /* the container got one from the pool: its loopback is up already */
  struct pooled netns_given; /* batch: the one the batch took for this container, or {-1, -1} */
  int sysfs_fd;           /* pooled namespace + user namespace: /sys, made by the supervisor (netns.c) */
  struct bind_mount mounts[MAX_ITEMS];
  int nmounts;
  struct port_map ports[16];
  int nports;
  const char *cgroup_dirs[16];
  int ncgroups;
  long userns_base;  /* >0: a user namespace maps container uids 0..65535 to host uids base..base+65535 */
  int shifted_lowers; /* userns: this many top layers are stored in host uids already (clone snapshots) */
  int layer_fds[MAX_ITEMS]; /* batch + userns: layer i idmapped once for every container (userns.c), or -1 */
  int mount_sock[2];  /* userns: the supervisor sends the container its mounts (made with host privileges) */
  const char *device_cgroup; /* v1: the devices cgroup all containers share; v2: one of cgroup_dirs */
  struct cgroup_setting cgroup_settings[MAX_ITEMS];
  int nsettings;
  char *env[MAX_ENV + 1];
  int nenv;
  char **argv;
};

/* status.c */
void status_init(const char *path);
void status_set_id(const char *id);
void status_event(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void json_escape(char *out, size_t outlen, const char *in);
void die_event(const char *what, int err) __attribute__((noreturn));

/* rootfs.c: everything runs inside the container's fresh mount namespace */
int setup_rootfs(const struct config *cfg, char *err, size_t errlen);
int loopback_up(char *err, size_t errlen);

/* devices.c: the one list of devices a container may use */
int make_dev(const char *root, int dev_mount, char *err, size_t errlen);
int make_dev_mount(uid_t owner, char *err, size_t errlen);
int devices_restrict(const char *dir, int v1, char *err, size_t errlen);

/* userns.c: mounts made by the supervisor (root on the host) and moved into the container's user namespace */
int userns_send_mounts(struct config *cfg, pid_t init, char *err, size_t errlen);
int userns_receive_rootfs(const struct config *cfg, char *err, size_t errlen);
int userns_become_root(char *err, size_t errlen);
int userns_prepare_layers(struct config *cfg);
void userns_close_layers(struct config *cfg);
int userns_receive_mount(const struct config *cfg, char *err, size_t errlen);

/* secure.c */
int drop_privileges(char *err, size_t errlen);

/* cgroups.c */
int cgroups_create(const struct config *cfg, char *err, size_t errlen);
int cgroups_join_self(const struct config *cfg, char *err, size_t errlen);
int cgroups_oom_killed(const struct config *cfg);
void cgroups_remove(const struct config *cfg);

/* netns.c: the pool of pre-made network namespaces */
int netns_pool_serve(const char *path, int target);
int netns_pool_take(const char *path, int want, struct pooled *out);
int netns_join_pooled(struct config *cfg, char *err, size_t errlen);
void netns_leave(int host);
int netns_set_low_ports(int first, char *err, size_t errlen);

/* forward.c */
int ports_bind(struct config *cfg, char *err, size_t errlen);
int ports_start(struct config *cfg, int netns_fd, int *pids, char *err, size_t errlen);

/* run.c / exec.c */
int run_container(struct config *cfg);
int exec_in_container(struct config *cfg);

/* init.c: PID 1 inside the container */
int container_init(const struct config *cfg, int ready_fd) __attribute__((noreturn));

/* Report a failure into the caller's `err` buffer (`char *err, size_t errlen` in scope) and return -1. */
#define FAIL(...)                       \
  do {                                  \
    snprintf(err, errlen, __VA_ARGS__); \
    return -1;                          \
  } while (0)

#endif
