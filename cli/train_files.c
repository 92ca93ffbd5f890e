/* anygrad train's files beyond the data: a --layers description read from a
 * file (--layers @FILE), and one run at a time saving to a checkpoint path. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* realpath */
#endif
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/socket.h>
#include <sys/un.h>
#endif

#include "anygrad.h"
#include "cli.h"
#include "train.h"

/* The file's layers as one description: lines and commas separate layers,
 * '#' starts a comment, blank lines are skipped. */
char *tr_layers_file(const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "--layers @%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *out = malloc(cap), line[1024];
    bool ok = out != NULL;
    if (out) out[0] = '\0';
    while (ok && fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errsz, "--layers @%s: a line longer than %zu characters", path, sizeof line - 2);
            ok = false;
            break;
        }
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = line, *e = line + strlen(line);
        while (*s == ' ' || *s == '\t' || *s == ',') s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t' || e[-1] == ','))
            *--e = '\0';
        if (!*s) continue;
        size_t need = len + strlen(s) + 3;
        if (need > 16384) {
            snprintf(err, errsz, "--layers @%s: the description is too long", path);
            ok = false;
            break;
        }
        if (need > cap) {
            char *p = realloc(out, cap = need * 2);
            if (!p) { ok = false; break; }
            out = p;
        }
        len += (size_t)sprintf(out + len, "%s%s", len ? ", " : "", s);
    }
    if (ok && ferror(f)) snprintf(err, errsz, "--layers @%s: %s", path, strerror(errno)), ok = false;
    if (ok && len == 0) snprintf(err, errsz, "--layers @%s: no layers in the file", path), ok = false;
    if (!ok && out && !*err) snprintf(err, errsz, "--layers @%s: out of memory", path);
    fclose(f);
    if (!ok) {
        free(out);
        return NULL;
    }
    return out;
}

/* The path a save really writes: a link's target (also one not there yet),
 * with its directory made canonical. */
static void save_target(const char *path, char *out, size_t size)
{
    char cur[PATH_MAX], link[PATH_MAX];
    snprintf(cur, sizeof cur, "%s", path);
    for (int hops = 0; hops < 16; hops++) {
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n <= 0) break;
        link[n] = '\0';
        char *slash = strrchr(cur, '/');
        if (link[0] == '/' || !slash) {
            snprintf(cur, sizeof cur, "%s", link);
        } else {
            slash[1] = '\0';
            char next[PATH_MAX];
            if (snprintf(next, sizeof next, "%s%s", cur, link) >= (int)sizeof next) break;
            memcpy(cur, next, sizeof cur);
        }
    }
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", cur);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? cur + (slash - dir) + 1 : cur;
    if (slash) *slash = '\0';
    char *rp = realpath(slash ? (*dir ? dir : "/") : ".", NULL);
    if (snprintf(out, size, "%s/%s", rp ? rp : dir, base) >= (int)size) out[size - 1] = '\0';
    free(rp);
}

/* Two runs saving to one file would take turns overwriting each other's
 * epochs: the second is refused. The claim is an abstract Unix socket named
 * after the target (Linux): nothing on disk, released when the process ends,
 * also when it is killed. Elsewhere, or when sockets fail, no claim is made. */
bool tr_claim_save(const char *path, char *err, size_t errsz)
{
#ifdef __linux__
    char target[PATH_MAX + 256];
    save_target(path, target, sizeof target);
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)target; *p; p++) h = (h ^ *p) * 1099511628211ULL;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return true;
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    int n = snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "anygrad-save-%016llx", (unsigned long long)h);
    if (bind(fd, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n)) == 0)
        return true; /* held until the process ends */
    int e = errno;
    close(fd);
    if (e == EADDRINUSE) {
        snprintf(err, errsz, "another anygrad train on this machine is saving to %s; give this "
                             "run another --save", target);
        return false;
    }
#else
    (void)path;
    (void)err;
    (void)errsz;
#endif
    return true;
}
