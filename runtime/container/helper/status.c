/* JSON-lines status reporting: every event goes to stdout (tau's pipe, may be gone) and to the status file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helper.h"

static int status_fd = -1;
static const char *status_id; /* batch mode: every event names its container */

void status_set_id(const char *id) { status_id = id; }

void status_init(const char *path) {
  if (path) status_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

void status_event(const char *fmt, ...) {
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  int skip = 0;
  if (status_id && fmt[0] == '{') {
    skip = snprintf(line, sizeof line, "{\"id\":\"%s\",", status_id);
    fmt++;
  }
  int n = vsnprintf(line + skip, sizeof line - 1 - skip, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  n += skip;
  if (n > (int)sizeof line - 2) n = sizeof line - 2;
  line[n++] = '\n';
  /*
   * Lines stay below PIPE_BUF, so the supervisors of a batch never interleave them. tau may have stopped reading
   * (it exits after "started"): SIGPIPE is ignored, errors do not matter.
   */
  if (write(STDOUT_FILENO, line, n) < 0) { /* reader gone */ }
  if (status_fd >= 0 && write(status_fd, line, n) < 0) { /* disk full: nothing better to do */ }
}

void json_escape(char *out, size_t outlen, const char *in) {
  size_t o = 0;
  for (; *in && o + 7 < outlen; in++) {
    unsigned char c = (unsigned char)*in;
    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = c;
    } else if (c < 0x20) {
      o += snprintf(out + o, outlen - o, "\\u%04x", c);
    } else {
      out[o++] = c;
    }
  }
  out[o] = 0;
}

void die_event(const char *what, int err) {
  char msg[1024], esc[2048];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  json_escape(esc, sizeof esc, msg);
  status_event("{\"event\":\"error\",\"message\":\"%s\"}", esc);
  exit(125);
}
