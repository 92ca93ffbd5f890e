/* Guide, section 6: data loading. Writes a tiny IDX data set and a CSV file to
 * a temporary directory, loads them, and checks what ag_loader hands out:
 * every sample once per epoch, the same order for the same seed, a disjoint
 * split, normalised batches. Exits 1 on any mismatch. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdtemp */
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "anygrad.h"
#include "check.h"

enum { N = 10 }; /* samples */

/* An IDX file of unsigned bytes: 0 0 0x08 ndim, ndim big-endian u32 sizes, data. */
static bool write_idx(const char *path, int ndim, const uint32_t *dims, const uint8_t *data)
{
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    const uint8_t magic[4] = {0, 0, 0x08, (uint8_t)ndim};
    size_t n = 1;
    bool ok = fwrite(magic, 1, 4, f) == 4;
    for (int d = 0; d < ndim; d++) {
        const uint8_t be[4] = {dims[d] >> 24, dims[d] >> 16 & 0xff, dims[d] >> 8 & 0xff, dims[d] & 0xff};
        ok = ok && fwrite(be, 1, 4, f) == 4;
        n *= dims[d];
    }
    ok = ok && fwrite(data, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Runs one epoch and records which samples came (by the id stored in x's first
 * value) in which order; checks every label against its sample. */
static int epoch_order(ag_loader *l, int64_t epoch, int order[N], int *batches)
{
    int seen = 0;
    *batches = 0;
    ag_loader_start_epoch(l, epoch);
    ag_tensor *x, *y;
    for (;;) {
        ag_scope_begin(); /* the batches belong to it */
        if (!ag_loader_next(l, &x, &y)) {
            CHECK(ag_last_status() == AG_OK); /* false at the end, or on an error */
            ag_scope_end();
            break;
        }
        int64_t b = ag_dim(x, 0);
        float hx[N * 6];
        int32_t hy[N];
        if (CHECK(b <= N && ag_to_host(x, hx, (size_t)b * 6 * sizeof(float)) == AG_OK &&
                  ag_to_host(y, hy, (size_t)b * sizeof(int32_t)) == AG_OK))
            for (int64_t i = 0; i < b && seen < N; i++) {
                int id = (int)lroundf(hx[i * 6] * 255.0f / 10.0f);
                CHECK(hy[i] == id % 3);
                order[seen++] = id;
            }
        (*batches)++;
        ag_scope_end();
    }
    return seen;
}

static bool is_permutation(const int *v, int n)
{
    int count[N] = {0};
    for (int i = 0; i < n; i++) {
        if (v[i] < 0 || v[i] >= N || count[v[i]]++) return false;
    }
    return true;
}

int main(void)
{
    /* Everything this program writes goes to a fresh directory, removed at the end. */
    char dir[256];
    if (!guide_tmpdir(dir, sizeof dir)) return 1;
    char img_path[320], lab_path[320], csv_path[320];
    snprintf(img_path, sizeof img_path, "%s/images.idx", dir);
    snprintf(lab_path, sizeof lab_path, "%s/labels.idx", dir);
    snprintf(csv_path, sizeof csv_path, "%s/table.csv", dir);

    /* ---- IDX: N images of 2x3 pixels (pixel j of image i = 10 i + j), labels i % 3 ---- */
    uint8_t pixels[N * 6], labels[N];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 6; j++) pixels[i * 6 + j] = (uint8_t)(10 * i + j);
        labels[i] = (uint8_t)(i % 3);
    }
    const uint32_t img_dims[3] = {N, 2, 3}, lab_dims[1] = {N};
    CHECK(write_idx(img_path, 3, img_dims, pixels) && write_idx(lab_path, 1, lab_dims, labels));

    ag_tensor *images = ag_idx_load(img_path); /* unsigned bytes, >= 2 dims: f32 / 255 */
    ag_tensor *lab = ag_idx_load(lab_path);    /* 1-dim unsigned bytes: int32 */
    CHECK(ag_ndim(images) == 3 && ag_dtype_of(images) == AG_F32 && ag_dtype_of(lab) == AG_I32);
    CHECK(!strcmp(ag_device_backend(ag_device_of(images)), "cpu")); /* data files load on the CPU */
    float img[N * 6];
    CHECK(ag_to_host(images, img, sizeof img) == AG_OK);
    for (int i = 0; i < N * 6; i++) CHECK(img[i] == (float)pixels[i] / 255.0f);

    /* ---- ag_loader: shuffled mini-batches of (x, y) ---- */
    const int64_t flat[2] = {N, 6};
    ag_tensor *x = ag_reshape(images, 2, flat);
    ag_loader_config cfg = {.batch_size = 4, .shuffle = true, .seed = 7};
    ag_loader *loader = ag_loader_new(x, lab, &cfg); /* holds x and y (CPU tensors) */
    CHECK(loader && ag_loader_size(loader) == N && ag_loader_num_batches(loader) == 3);
    int o0[N], o1[N], again[N], batches = 0;
    CHECK(epoch_order(loader, 0, o0, &batches) == N && batches == 3 && is_permutation(o0, N));
    CHECK(epoch_order(loader, 1, o1, &batches) == N && is_permutation(o1, N));
    CHECK(memcmp(o0, o1, sizeof o0) != 0); /* each epoch has its own order */

    ag_loader *twin = ag_loader_new(x, lab, &cfg); /* same seed, same orders */
    CHECK(epoch_order(twin, 0, again, &batches) == N && memcmp(o0, again, sizeof o0) == 0);
    ag_loader_free(twin);

    cfg.drop_last = true; /* 10 samples, batches of 4: the last 2 are dropped */
    ag_loader *dropping = ag_loader_new(x, lab, &cfg);
    CHECK(ag_loader_num_batches(dropping) == 2 && epoch_order(dropping, 0, again, &batches) == 8);
    ag_loader_free(dropping);

    /* ---- split: 30% validation (not shuffled), the rest training ---- */
    ag_loader *train = NULL, *val = NULL;
    CHECK(ag_loader_split(loader, 0.3, &train, &val) == AG_OK);
    CHECK(ag_loader_size(train) == 7 && ag_loader_size(val) == 3);
    int ot[N], ov[N], both[N];
    int nt = epoch_order(train, 0, ot, &batches), nv = epoch_order(val, 0, ov, &batches);
    CHECK(nt == 7 && nv == 3);
    memcpy(both, ot, sizeof(int) * 7);
    memcpy(both + 7, ov, sizeof(int) * 3);
    CHECK(is_permutation(both, N)); /* disjoint, and together every sample */
    ag_loader_free(train);
    ag_loader_free(val);
    ag_loader_free(loader);

    /* ---- CSV: a header line, then rows "i, 2 i, 3 i + 1" ---- */
    FILE *f = fopen(csv_path, "w");
    if (CHECK(f != NULL)) {
        fprintf(f, "a,b,target\n");
        for (int i = 0; i < N; i++) fprintf(f, "%d, %d, %d\n", i, 2 * i, 3 * i + 1);
        CHECK(fclose(f) == 0);
    }
    ag_tensor *table = ag_csv_load(csv_path, true); /* f32 [rows, columns] */
    CHECK(ag_dim(table, 0) == N && ag_dim(table, 1) == 3);
    ag_tensor *features = ag_slice(table, 1, 0, 2, 1); /* columns a, b: [N, 2] */
    ag_tensor *target = ag_slice(table, 1, 2, 3, 1);   /* column target: [N, 1] */

    /* ---- normalisation with the training set's own statistics ---- */
    ag_loader_config ncfg = {.batch_size = 3};
    ag_loader *nl = ag_loader_new(features, target, &ncfg);
    float mean[2], std[2];
    CHECK(ag_loader_stats(nl, true, mean, std) == AG_OK); /* per feature, population std */
    CHECK(fabsf(mean[0] - 4.5f) < 1e-5f && fabsf(std[0] - sqrtf(8.25f)) < 1e-5f);
    CHECK(fabsf(mean[1] - 9.0f) < 1e-5f && fabsf(std[1] - 2 * sqrtf(8.25f)) < 1e-5f);
    CHECK(ag_loader_set_normalize(nl, 2, mean, std) == AG_OK);
    double sum[2] = {0, 0}, sq[2] = {0, 0};
    ag_tensor *bx, *by;
    while (true) {
        ag_scope_begin();
        if (!ag_loader_next(nl, &bx, &by)) {
            ag_scope_end();
            break;
        }
        float h[6];
        int64_t b = ag_dim(bx, 0);
        CHECK(ag_to_host(bx, h, (size_t)b * 2 * sizeof(float)) == AG_OK);
        for (int64_t i = 0; i < b * 2; i++) {
            sum[i % 2] += h[i];
            sq[i % 2] += (double)h[i] * h[i];
        }
        ag_scope_end();
    }
    for (int j = 0; j < 2; j++) CHECK(fabs(sum[j] / N) < 1e-5 && fabs(sq[j] / N - 1.0) < 1e-5);
    ag_loader_free(nl);

    ag_release(images);
    ag_release(lab);
    ag_release(x);
    ag_release(table);
    ag_release(features);
    ag_release(target);
    unlink(img_path);
    unlink(lab_path);
    unlink(csv_path);
    CHECK(rmdir(dir) == 0);
    CHECK(ag_debug_live_buffers() == 0);
    if (failed) fprintf(stderr, "06_data: %d check(s) failed\n", failed);
    else printf("06_data: all checks passed\n");
    return failed ? 1 : 0;
}
