/* IDX files (LeCun's MNIST format): magic 0 0 type ndim, ndim big-endian u32
 * sizes, then big-endian data. zlib reads gzip and plain files alike. A header
 * that claims more data than the file can hold fails before any allocation. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "core.h"

/* IDX type codes: element size and the dtype they load as. */
static const struct idx_type {
    uint8_t code;
    const char *name;
    int size;
} idx_types[] = {
    {0x08, "unsigned byte", 1}, {0x09, "signed byte", 1}, {0x0B, "short", 2},
    {0x0C, "int", 4},           {0x0D, "float", 4},       {0x0E, "double", 8},
};

#define BAD(...) ag_set_error(AG_ERR_IO, __VA_ARGS__)

/* Reads exactly n bytes; false on a short read, with why in *why. */
static bool read_exact(gzFile f, void *dst, size_t n, const char **why)
{
    uint8_t *p = dst;
    while (n > 0) {
        unsigned chunk = n > (1u << 30) ? (1u << 30) : (unsigned)n;
        int got = gzread(f, p, chunk);
        if (got <= 0) {
            int err;
            const char *msg = gzerror(f, &err);
            *why = got < 0 || err != Z_OK ? msg : "unexpected end of file";
            return false;
        }
        p += got;
        n -= (size_t)got;
    }
    return true;
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Big-endian element i as the loaded value. */
static double element(const struct idx_type *t, const uint8_t *data, size_t i)
{
    const uint8_t *e = data + i * (size_t)t->size;
    switch (t->code) {
    case 0x08: return e[0];
    case 0x09: return (int8_t)e[0];
    case 0x0B: return (int16_t)(uint16_t)(e[0] << 8 | e[1]);
    case 0x0C: return (int32_t)be32(e);
    case 0x0D: {
        uint32_t u = be32(e);
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    default: {
        uint64_t u = (uint64_t)be32(e) << 32 | be32(e + 4);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    }
}

/* What the file's type loads as: unsigned-byte images become [0, 1] floats
 * (raw: stay u8), labels and other integers int32, floats f32. */
static ag_dtype load_dtype(const struct idx_type *t, int ndim, bool raw)
{
    if (t->code == 0x08) return raw ? AG_U8 : ndim >= 2 ? AG_F32 : AG_I32;
    return t->code == 0x0D || t->code == 0x0E ? AG_F32 : AG_I32;
}

/* n big-endian elements of src converted into dst of dtype dt. */
static void convert(const struct idx_type *t, ag_dtype dt, bool images, const uint8_t *src,
                    size_t n, void *dst)
{
    if (dt == AG_U8) {
        memcpy(dst, src, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double v = element(t, src, i);
        if (dt == AG_F32)
            ((float *)dst)[i] = images ? (float)(v / 255.0) : (float)v;
        else
            ((int32_t *)dst)[i] = (int32_t)v;
    }
}

/* The most data bytes the file can hold, known before anything is allocated: a
 * plain file's size exactly, a gzip member at most 1032 bytes per compressed
 * byte (deflate's limit). So a header that claims gigabytes in a small file
 * fails at once instead of after decompressing. */
static bool size_plausible(gzFile f, const char *path, size_t head, size_t need, const char **why,
                           char *msg, size_t msg_size)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return true; /* a pipe: reads decide */
    size_t fsize = (size_t)st.st_size;
    if (gzdirect(f)) {
        if (fsize - head < need) {
            snprintf(msg, msg_size, "the file has %zu", fsize - head);
            *why = msg;
            return false;
        }
        return true; /* extra bytes are reported after the data */
    }
    if (need / 1032 > fsize) {
        snprintf(msg, msg_size, "a gzip file of %zu bytes holds at most %zu", fsize, fsize * 1032);
        *why = msg;
        return false;
    }
    return true;
}

#define CHUNK (1u << 20)

static ag_tensor *load(gzFile f, const char *path, bool raw)
{
    uint8_t head[4];
    const char *why = NULL;
    if (!read_exact(f, head, 4, &why))
        return BAD("idx %s: cannot read the 4-byte magic: %s", path, why), NULL;
    const struct idx_type *t = NULL;
    for (size_t i = 0; i < sizeof idx_types / sizeof idx_types[0]; i++)
        if (idx_types[i].code == head[2]) t = &idx_types[i];
    if (head[0] || head[1] || !t)
        return BAD("idx %s: bad magic %02x %02x %02x %02x (expected 00 00, a type code 08 09 0b "
                   "0c 0d or 0e, and the dimension count)", path, head[0], head[1], head[2],
                   head[3]), NULL;
    int ndim = head[3];
    if (ndim < 1 || ndim > AG_MAX_DIMS)
        return BAD("idx %s: %d dimensions (1 to %d supported)", path, ndim, AG_MAX_DIMS), NULL;
    uint8_t dims[4 * AG_MAX_DIMS];
    if (!read_exact(f, dims, 4 * (size_t)ndim, &why))
        return BAD("idx %s: truncated in the dimension sizes: %s", path, why), NULL;
    int64_t shape[AG_MAX_DIMS], numel = 1;
    for (int d = 0; d < ndim; d++) {
        shape[d] = be32(dims + 4 * d);
        if (!ag__mul_ok(&numel, shape[d]) || numel > (int64_t)(SIZE_MAX / 8))
            return BAD("idx %s: dimension sizes overflow", path), NULL;
    }
    size_t need = (size_t)numel * (size_t)t->size;
    char shape_s[160], msg[96];
    ag__shape_fmt(ndim, shape, shape_s, sizeof shape_s);
    if (!size_plausible(f, path, 4 + 4 * (size_t)ndim, need, &why, msg, sizeof msg))
        return BAD("idx %s: truncated: %s of %s needs %zu data bytes, %s", path, t->name, shape_s,
                   need, why), NULL;
    /* Streamed in chunks into the tensor: the file's bytes are never all held
     * beside the loaded data. */
    ag_dtype dt = load_dtype(t, ndim, raw);
    bool images = t->code == 0x08 && dt == AG_F32;
    size_t esz = ag_dtype_size(dt), per = CHUNK / (size_t)t->size;
    ag_scope_begin();
    ag_tensor *y = ag__empty_on_cpu(dt, ndim, shape);
    uint8_t *in = malloc(CHUNK), *out = malloc(per * esz);
    if (y && (!in || !out)) {
        ag_set_error(AG_ERR_OOM, "idx %s: no host memory", path);
        y = NULL;
    }
    for (size_t done = 0; y && done < (size_t)numel;) {
        size_t n = (size_t)numel - done < per ? (size_t)numel - done : per;
        if (!read_exact(f, in, n * (size_t)t->size, &why)) {
            BAD("idx %s: truncated: %s of %s needs %zu data bytes, the file ends before (%s)",
                path, t->name, shape_s, need, why);
            y = NULL;
            break;
        }
        convert(t, dt, images, in, n, out);
        if (ag__upload(y->st->dev, y->st->buf, done * esz, out, n * esz) != AG_OK) y = NULL;
        done += n;
    }
    free(in);
    free(out);
    if (y) {
        uint8_t extra;
        int more = gzread(f, &extra, 1), err;
        const char *emsg = gzerror(f, &err);
        if (more != 0 || err != Z_OK) {
            BAD("idx %s: %s after the %zu data bytes the header describes", path,
                more > 0 ? "extra data" : emsg, need);
            y = NULL;
        }
    }
    return ag__done(y);
}

static ag_tensor *load_path(const char *op, const char *path, bool raw)
{
    if (!path) return ag_set_error(AG_ERR_ARG, "%s: path is NULL", op), NULL;
    gzFile f = gzopen(path, "rb");
    if (!f) return BAD("idx %s: cannot open: %s", path, strerror(errno)), NULL;
    gzbuffer(f, 1u << 17);
    ag_tensor *y = load(f, path, raw);
    gzclose(f);
    return y;
}

ag_tensor *ag_idx_load(const char *path) { return load_path("ag_idx_load", path, false); }
ag_tensor *ag_idx_load_raw(const char *path) { return load_path("ag_idx_load_raw", path, true); }
