/* IDX files (LeCun's MNIST format): magic 0 0 type ndim, ndim big-endian u32
 * sizes, then big-endian data. zlib reads gzip and plain files alike. The data
 * is read in growing chunks so a corrupt header that claims terabytes fails
 * as truncated instead of allocating them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
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

static ag_tensor *to_tensor(const struct idx_type *t, int ndim, const int64_t *shape,
                            const uint8_t *data, size_t n)
{
    /* unsigned-byte images become [0, 1] floats; labels and other integers int32 */
    bool images = t->code == 0x08 && ndim >= 2;
    bool floats = images || t->code == 0x0D || t->code == 0x0E;
    void *host = malloc(n ? n * 4 : 1);
    if (!host) return ag_set_error(AG_ERR_OOM, "idx: no host memory for %zu elements", n), NULL;
    for (size_t i = 0; i < n; i++) {
        double v = element(t, data, i);
        if (floats)
            ((float *)host)[i] = images ? (float)(v / 255.0) : (float)v;
        else
            ((int32_t *)host)[i] = (int32_t)v;
    }
    ag_tensor *y = ag__from_host_on_cpu(host, floats ? AG_F32 : AG_I32, ndim, shape);
    free(host);
    return y;
}

static ag_tensor *load(gzFile f, const char *path)
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
        if (!ag__mul_ok(&numel, shape[d]))
            return BAD("idx %s: dimension sizes overflow", path), NULL;
    }
    size_t need = (size_t)numel * (size_t)t->size, have = 0, cap = 0;
    uint8_t *data = NULL;
    while (have < need) {
        size_t ncap = cap ? cap * 2 : 1u << 20;
        if (ncap > need) ncap = need;
        uint8_t *nd = realloc(data, ncap);
        if (!nd) {
            free(data);
            return ag_set_error(AG_ERR_OOM, "idx %s: no host memory for %zu bytes", path, ncap), NULL;
        }
        data = nd;
        cap = ncap;
        if (!read_exact(f, data + have, cap - have, &why)) {
            free(data);
            char shape_s[160];
            ag__shape_fmt(ndim, shape, shape_s, sizeof shape_s);
            return BAD("idx %s: truncated: %s of %s needs %zu data bytes, the file ends before "
                       "(%s)", path, t->name, shape_s, need, why), NULL;
        }
        have = cap;
    }
    uint8_t extra;
    int more = gzread(f, &extra, 1);
    int err;
    const char *msg = gzerror(f, &err);
    ag_tensor *y = NULL;
    if (more != 0 || err != Z_OK)
        BAD("idx %s: %s after the %zu data bytes the header describes", path,
            more > 0 ? "extra data" : msg, need);
    else
        y = to_tensor(t, ndim, shape, data, (size_t)numel);
    free(data);
    return y;
}

ag_tensor *ag_idx_load(const char *path)
{
    if (!path) return ag_set_error(AG_ERR_ARG, "ag_idx_load: path is NULL"), NULL;
    gzFile f = gzopen(path, "rb");
    if (!f) return BAD("idx %s: cannot open: %s", path, strerror(errno)), NULL;
    gzbuffer(f, 1u << 17);
    ag_tensor *y = load(f, path);
    gzclose(f);
    return y;
}
