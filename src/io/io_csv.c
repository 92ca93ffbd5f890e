/* Numeric CSV tables: comma-separated numbers, one row per line, optional
 * header line. Blank lines are skipped; quoting is not supported (numbers
 * never need it). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define BAD(...) ag_set_error(AG_ERR_IO, __VA_ARGS__)

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return BAD("csv %s: cannot open: %s", path, strerror(errno)), NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, cap * 2 + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    bool err = ferror(f);
    fclose(f);
    if (!buf) return ag_set_error(AG_ERR_OOM, "csv %s: out of host memory", path), NULL;
    if (err) {
        free(buf);
        return BAD("csv %s: read error", path), NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static bool blank(const char *s, const char *e)
{
    for (; s < e; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r') return false;
    return true;
}

/* Parses one line's fields into out (when not NULL); returns the field count or
 * -1 after setting the error. */
static int64_t parse_line(const char *path, int64_t lineno, const char *s, const char *e,
                          float *out)
{
    int64_t col = 0;
    for (;;) {
        const char *end = s;
        while (end < e && *end != ',') end++;
        char field[128];
        const char *a = s, *b = end;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r')) b--;
        size_t flen = (size_t)(b - a);
        if (flen == 0 || flen >= sizeof field)
            return BAD("csv %s: line %lld, field %lld is %s", path, (long long)lineno,
                       (long long)col + 1, flen ? "too long for a number" : "empty"), -1;
        memcpy(field, a, flen);
        field[flen] = '\0';
        char *stop;
        errno = 0;
        float v = strtof(field, &stop);
        /* stop short of flen: trailing junk, or a NUL byte inside the field */
        if (stop != field + flen || (errno == ERANGE && isinf(v)))
            return BAD("csv %s: line %lld, field %lld: '%s' is not a number", path,
                       (long long)lineno, (long long)col + 1, field), -1;
        if (out) out[col] = v;
        col++;
        if (end >= e) return col;
        s = end + 1;
    }
}

/* Two passes: count rows and check the width, then fill. */
static ag_tensor *parse(const char *path, const char *buf, size_t len, bool has_header)
{
    int64_t rows = 0, cols = -1;
    float *data = NULL;
    for (int pass = 0; pass < 2; pass++) {
        const char *s = buf, *end = buf + len;
        int64_t lineno = 0, r = 0;
        bool header_done = !has_header;
        while (s < end) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            const char *e = nl ? nl : end;
            lineno++;
            if (!blank(s, e)) {
                if (!header_done) {
                    header_done = true;
                } else {
                    int64_t c = parse_line(path, lineno, s, e, pass ? data + r * cols : NULL);
                    if (c < 0) return free(data), NULL;
                    if (cols < 0) cols = c;
                    if (c != cols)
                        return free(data), BAD("csv %s: line %lld has %lld fields, earlier rows "
                                               "have %lld", path, (long long)lineno,
                                               (long long)c, (long long)cols), NULL;
                    r++;
                }
            }
            s = e + 1;
        }
        if (pass == 0) {
            rows = r;
            if (rows == 0) return BAD("csv %s: no data rows", path), NULL;
            int64_t total = rows;
            if (!ag__mul_ok(&total, cols)) return BAD("csv %s: table too large", path), NULL;
            data = malloc((size_t)total * sizeof *data);
            if (!data) return ag_set_error(AG_ERR_OOM, "csv %s: out of host memory", path), NULL;
        }
    }
    int64_t shape[2] = {rows, cols};
    ag_tensor *t = ag__from_host_on_cpu(data, AG_F32, 2, shape);
    free(data);
    return t;
}

ag_tensor *ag_csv_load(const char *path, bool has_header)
{
    if (!path) return ag_set_error(AG_ERR_ARG, "ag_csv_load: path is NULL"), NULL;
    size_t len = 0;
    char *buf = slurp(path, &len);
    if (!buf) return NULL;
    ag_tensor *t = parse(path, buf, len, has_header);
    free(buf);
    return t;
}
