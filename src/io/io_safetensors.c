/* safetensors reader and writer. Layout: u64 little-endian header length N, N
 * bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
 * "__metadata__": {str: str}}, then the data, offsets relative to its start.
 * The reader trusts nothing: every size is checked before it is used, and the
 * tensors' byte spans must tile the data exactly, as the reference
 * implementation requires. */
#define _GNU_SOURCE /* O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"
#include "json.h"

/* The reference implementation's limit; real headers are kilobytes. */
#define MAX_HEADER (100u * 1000u * 1000u)

typedef enum conv { C_F32, C_I32, C_F16, C_BF16, C_F64, C_INT } conv;

/* Stored dtypes: bytes per element, how they load and, for C_INT, the signedness. */
static const struct st_dtype {
    const char *name;
    int size;
    conv how;
    bool is_signed;
    ag_dtype loads_as;
} dtypes[] = {
    {"F32", 4, C_F32, true, AG_F32},   {"I32", 4, C_I32, true, AG_I32},
    {"F16", 2, C_F16, true, AG_F32},   {"BF16", 2, C_BF16, true, AG_F32},
    {"F64", 8, C_F64, true, AG_F32},   {"I64", 8, C_INT, true, AG_I32},
    {"U8", 1, C_INT, false, AG_I32},   {"I8", 1, C_INT, true, AG_I32},
    {"I16", 2, C_INT, true, AG_I32},   {"U16", 2, C_INT, false, AG_I32},
    {"U32", 4, C_INT, false, AG_I32},  {"BOOL", 1, C_INT, false, AG_I32},
};
/* Valid in the format, not loadable here. */
static const char *const unsupported[] = {"U64", "F8_E4M3", "F8_E5M2"};

static const struct st_dtype *dtype_by_name(const char *s)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (!strcmp(dtypes[i].name, s)) return &dtypes[i];
    return NULL;
}

static bool host_is_le(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* Little-endian file bytes <-> host order, in place. */
static void to_host_order(void *data, size_t n, int size)
{
    if (host_is_le() || size == 1) return;
    uint8_t *b = data;
    for (size_t i = 0; i < n; i++, b += size)
        for (int k = 0; k < size / 2; k++) {
            uint8_t t = b[k];
            b[k] = b[size - 1 - k];
            b[size - 1 - k] = t;
        }
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1F, m = h & 0x3FF, bits;
    if (e == 0x1F) {
        bits = sign | 0x7F800000u | (m << 13);
    } else if (e) {
        bits = sign | ((e + 112) << 23) | (m << 13);
    } else if (m == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        e = 113;
        while (!(m & 0x400)) {
            m <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((m & 0x3FF) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Converts n stored elements (host order) into dst of the loaded dtype. */
static ag_status convert(const struct st_dtype *dt, const uint8_t *src, size_t n, void *dst,
                         const char *name)
{
    float *f = dst;
    int32_t *o = dst;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *e = src + i * (size_t)dt->size;
        if (dt->how == C_F16) {
            uint16_t h;
            memcpy(&h, e, 2);
            f[i] = half_to_float(h);
        } else if (dt->how == C_BF16) {
            uint16_t h;
            memcpy(&h, e, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&f[i], &bits, 4);
        } else if (dt->how == C_F64) {
            double d;
            memcpy(&d, e, 8);
            f[i] = (float)d;
        } else { /* C_INT */
            int64_t v = 0;
            if (dt->size == 1) v = dt->is_signed ? (int64_t)(int8_t)e[0] : (int64_t)e[0];
            if (dt->size == 2) {
                uint16_t u;
                memcpy(&u, e, 2);
                v = dt->is_signed ? (int64_t)(int16_t)u : (int64_t)u;
            }
            if (dt->size == 4) {
                uint32_t u;
                memcpy(&u, e, 4);
                v = (int64_t)u;
            }
            if (dt->size == 8) memcpy(&v, e, 8);
            if (v < INT32_MIN || v > INT32_MAX)
                return ag_set_error(AG_ERR_UNSUPPORTED,
                                    "safetensors: tensor '%s' (%s) holds %lld at element %zu, "
                                    "outside int32",
                                    name, dt->name, (long long)v, i);
            o[i] = (int32_t)v;
        }
    }
    return AG_OK;
}

/* ---- writing ----------------------------------------------------------------- */

static const char *st_name(ag_dtype dt)
{
    static const char *const names[] = {[AG_F32] = "F32", [AG_I32] = "I32", [AG_F16] = "F16",
                                        [AG_BF16] = "BF16"};
    return (unsigned)dt < sizeof names / sizeof names[0] ? names[dt] : NULL;
}

static ag_status check_save_args(const char *path, int n, const char *const *names,
                                 ag_tensor *const *tensors, int nmeta, const char *const *meta)
{
    if (!path || !*path) return ag_set_error(AG_ERR_ARG, "safetensors_save: path is empty");
    if (n < 0 || (n > 0 && (!names || !tensors)) || nmeta < 0 || (nmeta > 0 && !meta))
        return ag_set_error(AG_ERR_ARG, "safetensors_save: bad argument lists (n %d, nmeta %d)",
                            n, nmeta);
    for (int i = 0; i < n; i++) {
        if (!names[i] || !*names[i] || !strcmp(names[i], "__metadata__"))
            return ag_set_error(AG_ERR_ARG, "safetensors_save: tensor %d has an empty or "
                                            "reserved name", i);
        if (!tensors[i])
            return ag_set_error(AG_ERR_ARG, "safetensors_save: tensor '%s' is NULL", names[i]);
        if (!ag__valid("safetensors_save", tensors[i])) return ag_last_status();
        if (!st_name(tensors[i]->dtype))
            return ag_set_error(AG_ERR_DTYPE, "safetensors_save: tensor '%s' has dtype %s",
                                names[i], ag_dtype_name(tensors[i]->dtype));
        for (int j = 0; j < i; j++)
            if (!strcmp(names[i], names[j]))
                return ag_set_error(AG_ERR_ARG, "safetensors_save: name '%s' given twice",
                                    names[i]);
    }
    for (int i = 0; i < 2 * nmeta; i++)
        if (!meta[i])
            return ag_set_error(AG_ERR_ARG, "safetensors_save: metadata string %d is NULL", i);
    return AG_OK;
}

/* The JSON header, padded with spaces to a multiple of 8 bytes so the data
 * that follows is aligned (as the reference writer does). */
static char *build_header(int n, const char *const *names, ag_tensor *const *tensors, int nmeta,
                          const char *const *meta, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) return NULL;
    fputc('{', f);
    if (nmeta > 0) {
        fputs("\"__metadata__\":{", f);
        for (int i = 0; i < nmeta; i++) {
            if (i) fputc(',', f);
            ag_json_write_string(f, meta[2 * i]);
            fputc(':', f);
            ag_json_write_string(f, meta[2 * i + 1]);
        }
        fputc('}', f);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const ag_tensor *t = tensors[i];
        if (i || nmeta > 0) fputc(',', f);
        ag_json_write_string(f, names[i]);
        fprintf(f, ":{\"dtype\":\"%s\",\"shape\":[", st_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) fprintf(f, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        uint64_t bytes = (uint64_t)ag_numel(t) * ag_dtype_size(t->dtype);
        fprintf(f, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
                (unsigned long long)(off + bytes));
        off += bytes;
    }
    fputc('}', f);
    long pos = ftell(f);
    while (pos % 8) {
        fputc(' ', f);
        pos++;
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = size;
    return buf;
}

/* Every step of a save that touches the file system is a fault point
 * (AG_FAULT_WRITE): true when this one is to fail as if the system call had. */
static bool injected(void) { return ag_fault_hit(AG_FAULT_WRITE); }

static const char *why(bool inj) { return inj ? "injected fault" : strerror(errno); }

static ag_status write_all(FILE *f, const void *p, size_t n, const char *tmp)
{
    bool inj = injected();
    if (inj || (n && fwrite(p, 1, n, f) != n))
        return ag_set_error(AG_ERR_IO, "safetensors_save: writing %s: %s", tmp, why(inj));
    return AG_OK;
}

static ag_status write_body(FILE *f, const char *tmp, const char *hdr, size_t hlen, int n,
                            ag_tensor *const *tensors)
{
    uint8_t lenb[8];
    for (int k = 0; k < 8; k++) lenb[k] = (uint8_t)((uint64_t)hlen >> (8 * k));
    ag_status s = write_all(f, lenb, 8, tmp);
    if (s == AG_OK) s = write_all(f, hdr, hlen, tmp);
    for (int i = 0; i < n && s == AG_OK; i++) {
        size_t esize = ag_dtype_size(tensors[i]->dtype);
        size_t bytes = (size_t)ag_numel(tensors[i]) * esize;
        void *host = malloc(bytes ? bytes : 1);
        if (!host)
            return ag_set_error(AG_ERR_OOM, "safetensors_save: no host memory for %zu bytes",
                                bytes);
        s = ag_to_host(tensors[i], host, bytes);
        if (s == AG_OK) {
            to_host_order(host, bytes / esize, (int)esize); /* swapping is its own inverse */
            s = write_all(f, host, bytes, tmp);
        }
        free(host);
    }
    return s;
}

/* Makes the rename itself durable; failure here is not an error for the data. */
static void sync_dir_of(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        snprintf(dir, sizeof dir, ".");
    } else {
        size_t k = (size_t)(slash - path);
        if (k >= sizeof dir) return;
        memcpy(dir, path, k ? k : 1);
        dir[k ? k : 1] = '\0';
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* A link another user planted in a shared sticky directory (/tmp) is not
 * followed, as the kernel's fs.protected_symlinks would not let open() follow
 * it: a save must not be redirected into a file of the saving user's. */
static bool link_trusted(const char *link, const struct stat *lst)
{
    char dir[4096];
    const char *slash = strrchr(link, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == link ? 1 : (int)(slash - link), link);
    struct stat dst;
    if (stat(dir, &dst) != 0) return false;
    bool shared = (dst.st_mode & S_ISVTX) && (dst.st_mode & S_IWOTH);
    return !shared || lst->st_uid == geteuid() || lst->st_uid == dst.st_uid;
}

/* The file a save replaces: path itself, or for a symbolic link (a chain of
 * them) the file at its end, which need not exist yet (renaming over the link
 * would turn it into a stale copy). Anything but a regular file is refused: a
 * save to /dev/null, a FIFO or a directory must not put a regular file in its
 * place. Malloc'ed; NULL with the error. */
static char *save_target(const char *path)
{
    char *cur = strdup(path);
    for (int hops = 0; cur; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0) {
            if (errno == ENOENT) return cur; /* a new file */
            ag_set_error(AG_ERR_IO, "safetensors_save: %s: %s", cur, strerror(errno));
            break;
        }
        if (S_ISREG(st.st_mode)) return cur;
        if (!S_ISLNK(st.st_mode)) {
            const char *kind = S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                               : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                                            : "not a regular file";
            if (strcmp(cur, path))
                ag_set_error(AG_ERR_IO, "safetensors_save: %s, where the link %s leads, is %s; "
                                        "refusing to replace it", cur, path, kind);
            else
                ag_set_error(AG_ERR_IO, "safetensors_save: %s is %s; refusing to replace it", cur, kind);
            break;
        }
        if (hops == 16) {
            ag_set_error(AG_ERR_IO, "safetensors_save: %s: more than 16 symbolic links", path);
            break;
        }
        if (!link_trusted(cur, &st)) {
            ag_set_error(AG_ERR_IO, "safetensors_save: %s is a symbolic link of another user in a "
                                    "shared directory; refusing to follow it", cur);
            break;
        }
        char link[4096];
        ssize_t k = readlink(cur, link, sizeof link - 1);
        if (k <= 0) {
            ag_set_error(AG_ERR_IO, "safetensors_save: reading the link %s: %s", cur, strerror(errno));
            break;
        }
        link[k] = '\0';
        const char *slash = strrchr(cur, '/');
        int dlen = link[0] == '/' || !slash ? 0 : (int)(slash - cur) + 1;
        size_t cap = (size_t)dlen + (size_t)k + 1;
        char *next = malloc(cap);
        if (next) snprintf(next, cap, "%.*s%s", dlen, cur, link);
        else ag_set_error(AG_ERR_OOM, "safetensors_save: out of host memory");
        free(cur);
        cur = next;
    }
    if (!cur) ag_set_error(AG_ERR_OOM, "safetensors_save: out of host memory");
    free(cur);
    return NULL;
}

/* Gives a new file the mode the saved file should have: an existing file's
 * permission bits, otherwise what creating it with 0666 gave (the umask and
 * any default ACL applied by the kernel). */
static bool keep_mode(int fd, const char *path, bool *inj)
{
    struct stat st;
    return !(stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
             ((*inj = injected()) || fchmod(fd, st.st_mode & 0777) != 0));
}

static bool named_temp(const char *path, char *tmp, size_t cap, int fd_or_neg, int *fd_out)
{
    static _Atomic unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
        if (fd_or_neg >= 0) {
            /* name the anonymous file only now that it is complete */
            char proc[64];
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd_or_neg);
            if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0) return true;
        } else {
            *fd_out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
            if (*fd_out >= 0) return true;
        }
        if (errno != EEXIST) return false;
    }
    return false;
}

/* A new file for the data, in path's directory: an anonymous one (O_TMPFILE,
 * named only once written, so a process killed while saving leaves nothing
 * behind) where the system has them, else a named one (O_EXCL). *anon tells
 * which; tmp receives the name of a named one. On failure *inj tells an
 * injected fault from errno's. */
static int create_temp(const char *path, char *tmp, size_t cap, bool *anon, bool *inj)
{
    int fd = -1;
    *anon = false;
    tmp[0] = '\0';
    if ((*inj = injected())) return -1;
#ifdef O_TMPFILE
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (access("/proc/self/fd", X_OK) == 0 &&
        (fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0666)) >= 0)
        *anon = true;
#endif
    if (fd < 0 && !named_temp(path, tmp, cap, -1, &fd)) return -1;
    if (!keep_mode(fd, path, inj)) {
        int e = errno;
        close(fd);
        if (!*anon) unlink(tmp);
        errno = e;
        return -1;
    }
    return fd;
}

ag_status ag_safetensors_save(const char *path, int n, const char *const *names,
                              ag_tensor *const *tensors, int nmeta, const char *const *meta)
{
    ag_status s = check_save_args(path, n, names, tensors, nmeta, meta);
    if (s != AG_OK) return s;
    char *target = save_target(path);
    if (!target) return ag_last_status();
    size_t hlen = 0;
    char *hdr = build_header(n, names, tensors, nmeta, meta, &hlen);
    size_t tcap = strlen(target) + 48; /* ".tmp.<pid>.<counter>" */
    char *tmp = hdr ? malloc(tcap) : NULL;
    if (!tmp) {
        free(hdr);
        free(target);
        return ag_set_error(AG_ERR_OOM, "safetensors_save: out of host memory");
    }
    bool inj = false, anon = false;
    int fd = create_temp(target, tmp, tcap, &anon, &inj);
    FILE *f = fd >= 0 && !(inj = injected()) ? fdopen(fd, "wb") : NULL;
    if (!f) {
        s = ag_set_error(AG_ERR_IO, "safetensors_save: cannot create a temporary file next to "
                                    "%s: %s", target, why(inj));
        if (fd >= 0) {
            close(fd);
            if (!anon) unlink(tmp);
        }
        free(hdr);
        free(tmp);
        free(target);
        return s;
    }
    const char *what = anon ? "the new file" : tmp;
    s = write_body(f, what, hdr, hlen, n, tensors);
    free(hdr);
    if (s == AG_OK && ((inj = injected()) || fflush(f) != 0))
        s = ag_set_error(AG_ERR_IO, "safetensors_save: flushing %s: %s", what, why(inj));
    if (s == AG_OK && ((inj = injected()) || fsync(fileno(f)) != 0))
        s = ag_set_error(AG_ERR_IO, "safetensors_save: syncing %s: %s", what, why(inj));
    if (s == AG_OK && anon && !named_temp(target, tmp, tcap, fileno(f), NULL))
        s = ag_set_error(AG_ERR_IO, "safetensors_save: naming the new file next to %s: %s",
                         target, strerror(errno));
    bool named = !anon || s == AG_OK;
    /* closed either way; an injected failure still closes it, as a real one does */
    inj = s == AG_OK && injected();
    if ((fclose(f) != 0 || inj) && s == AG_OK)
        s = ag_set_error(AG_ERR_IO, "safetensors_save: closing %s: %s", tmp, why(inj));
    if (s == AG_OK && ((inj = injected()) || rename(tmp, target) != 0))
        s = ag_set_error(AG_ERR_IO, "safetensors_save: renaming %s to %s: %s", tmp, target,
                         why(inj));
    /* The directory sync after the rename is no fault point: the new file is in
     * place by then, and a failure there is not reported. */
    if (s != AG_OK) {
        if (named) unlink(tmp);
    } else {
        sync_dir_of(target);
    }
    free(tmp);
    free(target);
    return s;
}

/* ---- reading ------------------------------------------------------------------- */

typedef struct entry {
    const char *name;
    const struct st_dtype *dt;
    int ndim;
    int64_t shape[AG_MAX_DIMS];
    uint64_t begin, end;
} entry;

#define BAD(...) ag_set_error(AG_ERR_IO, __VA_ARGS__)

static ag_status parse_u64_pair(const char *path, const char *name, const ag_json *a,
                                uint64_t *b, uint64_t *e)
{
    if (!a || a->type != AG_JSON_ARRAY || a->n != 2 || a->items[0].type != AG_JSON_NUMBER ||
        a->items[1].type != AG_JSON_NUMBER || !a->items[0].is_int || !a->items[1].is_int ||
        a->items[0].integer < 0 || a->items[1].integer < 0)
        return BAD("safetensors %s: tensor '%s' needs data_offsets [begin, end] of two "
                   "non-negative integers", path, name);
    *b = (uint64_t)a->items[0].integer;
    *e = (uint64_t)a->items[1].integer;
    if (*b > *e)
        return BAD("safetensors %s: tensor '%s' has data_offsets [%llu, %llu] with begin > end",
                   path, name, (unsigned long long)*b, (unsigned long long)*e);
    return AG_OK;
}

static ag_status parse_entry(const char *path, const char *name, const ag_json *v,
                             uint64_t data_len, entry *out)
{
    if (v->type != AG_JSON_OBJECT)
        return BAD("safetensors %s: entry '%s' is not an object", path, name);
    out->name = name;
    const ag_json *dt = ag_json_get(v, "dtype"), *sh = ag_json_get(v, "shape");
    if (!dt || dt->type != AG_JSON_STRING)
        return BAD("safetensors %s: tensor '%s' has no dtype string", path, name);
    out->dt = dtype_by_name(dt->str);
    if (!out->dt) {
        for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
            if (!strcmp(dt->str, unsupported[i]))
                return ag_set_error(AG_ERR_UNSUPPORTED, "safetensors %s: tensor '%s' has dtype "
                                    "%s, which anygrad cannot load", path, name, dt->str);
        return BAD("safetensors %s: tensor '%s' has unknown dtype '%s'", path, name, dt->str);
    }
    if (!sh || sh->type != AG_JSON_ARRAY)
        return BAD("safetensors %s: tensor '%s' has no shape array", path, name);
    if (sh->n > AG_MAX_DIMS)
        return BAD("safetensors %s: tensor '%s' has %zu dimensions (at most %d)", path, name,
                   sh->n, AG_MAX_DIMS);
    out->ndim = (int)sh->n;
    int64_t numel = 1;
    for (size_t d = 0; d < sh->n; d++) {
        const ag_json *x = &sh->items[d];
        if (x->type != AG_JSON_NUMBER || !x->is_int || x->integer < 0)
            return BAD("safetensors %s: tensor '%s' has a shape entry that is not a "
                       "non-negative integer", path, name);
        out->shape[d] = x->integer;
        if (!ag__mul_ok(&numel, x->integer))
            return BAD("safetensors %s: tensor '%s' shape is too large", path, name);
    }
    ag_status s = parse_u64_pair(path, name, ag_json_get(v, "data_offsets"), &out->begin, &out->end);
    if (s != AG_OK) return s;
    if (out->end > data_len)
        return BAD("safetensors %s: tensor '%s' data_offsets [%llu, %llu] run past the %llu "
                   "data bytes in the file", path, name, (unsigned long long)out->begin,
                   (unsigned long long)out->end, (unsigned long long)data_len);
    if ((uint64_t)numel * (uint64_t)out->dt->size != out->end - out->begin)
        return BAD("safetensors %s: tensor '%s' is %s with %lld elements (%llu bytes) but its "
                   "data_offsets span %llu bytes", path, name, out->dt->name, (long long)numel,
                   (unsigned long long)numel * (unsigned long long)out->dt->size,
                   (unsigned long long)(out->end - out->begin));
    return AG_OK;
}

static int by_begin(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a, *y = *(const entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The spans, sorted, must tile [0, data_len): no overlap, no gap. */
static ag_status check_tiling(const char *path, entry *e, size_t n, uint64_t data_len)
{
    entry **order = malloc((n ? n : 1) * sizeof *order);
    if (!order) return ag_set_error(AG_ERR_OOM, "safetensors %s: out of host memory", path);
    for (size_t i = 0; i < n; i++) order[i] = &e[i];
    qsort(order, n, sizeof *order, by_begin);
    uint64_t at = 0;
    ag_status s = AG_OK;
    for (size_t i = 0; i < n && s == AG_OK; i++) {
        if (order[i]->begin < at)
            s = BAD("safetensors %s: tensor '%s' data [%llu, %llu) overlaps tensor '%s'", path,
                    order[i]->name, (unsigned long long)order[i]->begin,
                    (unsigned long long)order[i]->end, order[i - 1]->name);
        else if (order[i]->begin > at)
            s = BAD("safetensors %s: bytes [%llu, %llu) of the data belong to no tensor", path,
                    (unsigned long long)at, (unsigned long long)order[i]->begin);
        at = order[i]->end;
    }
    if (s == AG_OK && at != data_len)
        s = BAD("safetensors %s: the tensors cover %llu data bytes but the file holds %llu", path,
                (unsigned long long)at, (unsigned long long)data_len);
    free(order);
    return s;
}

static ag_status parse_metadata(const char *path, const ag_json *m, ag_tensor_dict *d)
{
    if (m->type != AG_JSON_OBJECT)
        return BAD("safetensors %s: __metadata__ is not an object", path);
    d->meta_keys = calloc(m->n ? m->n : 1, sizeof *d->meta_keys);
    d->meta_values = calloc(m->n ? m->n : 1, sizeof *d->meta_values);
    if (!d->meta_keys || !d->meta_values)
        return ag_set_error(AG_ERR_OOM, "safetensors %s: out of host memory", path);
    for (size_t i = 0; i < m->n; i++) {
        if (m->items[i].type != AG_JSON_STRING)
            return BAD("safetensors %s: __metadata__ value of '%s' is not a string", path,
                       m->keys[i]);
        d->meta_keys[i] = strdup(m->keys[i]);
        d->meta_values[i] = strdup(m->items[i].str);
        d->nmeta++;
        if (!d->meta_keys[i] || !d->meta_values[i])
            return ag_set_error(AG_ERR_OOM, "safetensors %s: out of host memory", path);
    }
    return AG_OK;
}

static ag_status load_tensor(FILE *f, const char *path, uint64_t data_start, const entry *e,
                             ag_tensor **out)
{
    size_t bytes = (size_t)(e->end - e->begin), n = bytes / (size_t)e->dt->size;
    uint8_t *raw = malloc(bytes ? bytes : 1);
    if (!raw) return ag_set_error(AG_ERR_OOM, "safetensors %s: no host memory for '%s'", path, e->name);
    ag_status s = AG_OK;
    if (bytes && (fseeko(f, (off_t)(data_start + e->begin), SEEK_SET) != 0 ||
                  fread(raw, 1, bytes, f) != bytes))
        s = BAD("safetensors %s: cannot read the data of '%s' (file changed or unreadable)", path,
                e->name);
    if (s == AG_OK) to_host_order(raw, n, e->dt->size);
    void *conv_buf = raw;
    if (s == AG_OK && e->dt->how != C_F32 && e->dt->how != C_I32) {
        conv_buf = malloc(n ? n * 4 : 1);
        if (!conv_buf) s = ag_set_error(AG_ERR_OOM, "safetensors %s: out of host memory", path);
        else s = convert(e->dt, raw, n, conv_buf, e->name);
    }
    ag_tensor *t = NULL;
    if (s == AG_OK) {
        t = ag_empty(e->ndim, e->shape, e->dt->loads_as);
        if (!t || ag_from_host(t, conv_buf, n * 4) != AG_OK) s = ag_last_status();
    }
    if (conv_buf != raw) free(conv_buf);
    free(raw);
    if (s == AG_OK) *out = t; /* on failure the caller's scope frees t */
    return s;
}

static ag_status read_header(FILE *f, const char *path, ag_json **root, uint64_t *data_start,
                             uint64_t *data_len)
{
    if (fseeko(f, 0, SEEK_END) != 0) return BAD("safetensors %s: cannot seek", path);
    off_t fsize = ftello(f);
    uint8_t lb[8];
    if (fsize < 8 || fseeko(f, 0, SEEK_SET) != 0 || fread(lb, 1, 8, f) != 8)
        return BAD("safetensors %s: file is %lld bytes, shorter than the 8-byte header length",
                   path, (long long)fsize);
    uint64_t hlen = 0;
    for (int k = 0; k < 8; k++) hlen |= (uint64_t)lb[k] << (8 * k);
    if (hlen > MAX_HEADER)
        return BAD("safetensors %s: header length %llu exceeds the %u-byte limit", path,
                   (unsigned long long)hlen, MAX_HEADER);
    if (hlen < 2 || 8 + hlen > (uint64_t)fsize)
        return BAD("safetensors %s: header length %llu does not fit the %lld-byte file "
                   "(truncated?)", path, (unsigned long long)hlen, (long long)fsize);
    char *text = malloc((size_t)hlen);
    if (!text) return ag_set_error(AG_ERR_OOM, "safetensors %s: no memory for the header", path);
    if (fread(text, 1, (size_t)hlen, f) != hlen) {
        free(text);
        return BAD("safetensors %s: cannot read the header", path);
    }
    char err[160];
    *root = text[0] == '{' ? ag_json_parse(text, (size_t)hlen, err, sizeof err) : NULL;
    if (text[0] != '{') snprintf(err, sizeof err, "it does not start with '{'");
    free(text);
    if (!*root) return BAD("safetensors %s: header is not valid JSON: %s", path, err);
    *data_start = 8 + hlen;
    *data_len = (uint64_t)fsize - *data_start;
    return AG_OK;
}

typedef struct keyref {
    const char *s;
    size_t len;
} keyref;

static int cmp_key(const void *a, const void *b)
{
    const keyref *x = a, *y = b;
    int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

/* No name twice: sorts the keys and compares neighbours, O(n log n) for headers
 * of up to millions of entries. */
static ag_status check_unique(const char *path, const ag_json *root)
{
    if (root->n < 2) return AG_OK;
    keyref *k = malloc(root->n * sizeof *k);
    if (!k) return ag_set_error(AG_ERR_OOM, "safetensors %s: out of host memory", path);
    for (size_t i = 0; i < root->n; i++) k[i] = (keyref){root->keys[i], root->key_lens[i]};
    qsort(k, root->n, sizeof *k, cmp_key);
    ag_status s = AG_OK;
    for (size_t i = 1; i < root->n && s == AG_OK; i++)
        if (cmp_key(&k[i - 1], &k[i]) == 0)
            s = BAD("safetensors %s: name '%s' appears twice in the header", path, k[i].s);
    free(k);
    return s;
}

static ag_status parse_file(FILE *f, const char *path, ag_tensor_dict *d)
{
    ag_json *root = NULL;
    uint64_t data_start = 0, data_len = 0;
    ag_status s = read_header(f, path, &root, &data_start, &data_len);
    if (s != AG_OK) return s;
    entry *e = calloc(root->n ? root->n : 1, sizeof *e);
    size_t ne = 0;
    if (!e) s = ag_set_error(AG_ERR_OOM, "safetensors %s: out of host memory", path);
    if (s == AG_OK) s = check_unique(path, root);
    for (size_t i = 0; i < root->n && s == AG_OK; i++) {
        if (strlen(root->keys[i]) != root->key_lens[i])
            s = BAD("safetensors %s: a tensor name contains a NUL character", path);
        else if (!strcmp(root->keys[i], "__metadata__"))
            s = parse_metadata(path, &root->items[i], d);
        else
            s = parse_entry(path, root->keys[i], &root->items[i], data_len, &e[ne++]);
    }
    if (s == AG_OK) s = check_tiling(path, e, ne, data_len);
    if (s == AG_OK) {
        d->names = calloc(ne ? ne : 1, sizeof *d->names);
        d->tensors = calloc(ne ? ne : 1, sizeof *d->tensors);
        if (!d->names || !d->tensors) s = ag_set_error(AG_ERR_OOM, "safetensors: out of memory");
    }
    for (size_t i = 0; i < ne && s == AG_OK; i++) {
        d->names[i] = strdup(e[i].name);
        if (!d->names[i]) {
            s = ag_set_error(AG_ERR_OOM, "safetensors: out of memory");
            break;
        }
        d->n++;
        s = load_tensor(f, path, data_start, &e[i], &d->tensors[i]);
    }
    free(e);
    ag_json_free(root);
    return s;
}

ag_tensor_dict *ag_safetensors_load(const char *path)
{
    if (!path) return ag_set_error(AG_ERR_ARG, "safetensors_load: path is NULL"), NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return BAD("safetensors %s: cannot open: %s", path, strerror(errno)), NULL;
    ag_tensor_dict *d = calloc(1, sizeof *d);
    if (!d) {
        fclose(f);
        return ag_set_error(AG_ERR_OOM, "safetensors: out of host memory"), NULL;
    }
    /* Tensors outlive any scope the caller has open: the dict owns them. */
    ag_scope_begin();
    ag_status s = parse_file(f, path, d);
    for (int i = 0; i < d->n; i++) ag_retain(d->tensors[i]);
    ag_scope_end();
    fclose(f);
    if (s != AG_OK) {
        ag_tensor_dict_free(d);
        return NULL;
    }
    return d;
}

ag_tensor *ag_tensor_dict_get(const ag_tensor_dict *d, const char *name)
{
    if (!d || !name) return NULL;
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->names[i], name)) return d->tensors[i];
    return NULL;
}

const char *ag_tensor_dict_meta(const ag_tensor_dict *d, const char *key)
{
    if (!d || !key) return NULL;
    for (int i = 0; i < d->nmeta; i++)
        if (!strcmp(d->meta_keys[i], key)) return d->meta_values[i];
    return NULL;
}

void ag_tensor_dict_free(ag_tensor_dict *d)
{
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        free(d->names[i]);
        ag_release(d->tensors[i]);
    }
    for (int i = 0; i < d->nmeta; i++) {
        free(d->meta_keys[i]);
        free(d->meta_values[i]);
    }
    free(d->names);
    free(d->tensors);
    free(d->meta_keys);
    free(d->meta_values);
    free(d);
}
