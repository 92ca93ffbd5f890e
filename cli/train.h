/* What anygrad train, eval and predict share (cli/train*.c, cli/eval.c): the
 * models, the data, the checkpoints with the run's settings. */
#ifndef AG_CLI_TRAIN_H
#define AG_CLI_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "anygrad.h"
#include "args.h"

/* the metadata keys of the run's settings in a checkpoint */
#define META "anygrad."

/* What the data decides about a model: one sample's shape (channels, height,
 * width; features only: [1, 1, F]) and the number of classes. */
typedef struct dims {
    int64_t c, h, w, classes;
} dims;

/* The built-in models are layer descriptions (layers.c) like --layers. */
typedef struct model_spec {
    const char *name, *layers;
    int first_weight_ndim;  /* of "0.weight": tells checkpoints of the two apart */
    const char *out_weight; /* the last layer's weight: [classes, ...] */
    const char *about;
} model_spec;

/* Input normalisation: one mean and deviation for all features (images) or
 * one per feature (tables). */
typedef struct norm {
    int64_t n;
    float *mean, *sd;
} norm;

/* anygrad eval's batch: small enough that a CNN's activations stay tens of MB */
#define EVAL_BATCH 128

/* ---- models (train_models.c) ---- */
const model_spec *tr_find_model(const char *name);
model_spec tr_custom_model(const char *layers);
bool tr_takes_images(const model_spec *ms);
ag_module *tr_build_model(const model_spec *ms, const dims *d); /* says why when NULL */
void tr_describe(const model_spec *ms, const dims *d, char *buf, size_t size);
/* The model to rebuild from a checkpoint: --model when given, else its layer
 * description (into *custom), else its named model; NULL when it cannot tell. */
const model_spec *tr_spec_of(const ag_tensor_dict *d, const char *model_opt, model_spec *custom);
const model_spec *tr_model_of(const ag_tensor_dict *d);
dims tr_dims_of(const ag_tensor_dict *d, const model_spec *ms);

/* ---- data (train_data.c); the loaders print why they fail ---- */
void tr_idx_path(const char *dir, const char *split, const char *kind, char *buf, size_t size);
bool tr_load_split(const char *dir, const char *split, int64_t limit, const model_spec *ms,
                   dims *d, ag_tensor **x, ag_tensor **y);
bool tr_is_csv(const char *path);
ag_tensor *tr_csv_table(const char *path);
ag_tensor *tr_without_column(ag_tensor *t, int64_t lc);
bool tr_load_csv(const char *path, int64_t label_col, int64_t limit, const model_spec *ms,
                 dims *d, ag_tensor **x, ag_tensor **y);
/* take x and y (released also on failure) */
ag_loader *tr_make_loader_drop(ag_tensor *x, ag_tensor *y, int64_t batch, bool shuffle,
                               uint64_t seed, bool drop_last);
ag_loader *tr_make_loader(ag_tensor *x, ag_tensor *y, int64_t batch, bool shuffle, uint64_t seed);
bool tr_evaluate(ag_module *m, ag_loader *l, double *loss, double *acc);
ag_tensor *tr_csv_inputs(const char *path, int64_t label_col, int64_t features);
ag_tensor *tr_idx_inputs(const char *path, const model_spec *ms, const dims *d);

/* ---- checkpoints with the run's settings (train_ckpt.c) ---- */
void tr_norm_free(norm *z);
bool tr_norm_alloc(norm *z, int64_t n);
bool tr_meta_float1(const ag_tensor_dict *d, const char *key, float *out);
bool tr_norm_from_meta(const ag_tensor_dict *d, int64_t features, norm *z);
/* epoch: finished epochs; epoch_step > 0: steps of the next one done too (a
 * Ctrl-C'ed run); z, dm: NULL for none; nextra key, value pairs of the
 * caller's (keys without the "anygrad." prefix) */
ag_status tr_save_checkpoint(const cli_train_opts *t, ag_module *m, ag_optim *opt, int64_t epoch,
                             int64_t epoch_step, const norm *z, const dims *dm, int64_t total,
                             int64_t cos_from, float cos_lr, int nextra, const char *const *extra);

/* ---- files (train_files.c) ---- */
char *tr_layers_file(const char *path, char *err, size_t errsz); /* malloc'ed description */
bool tr_claim_save(const char *path, char *err, size_t errsz);    /* false: another run has it */

/* ---- Ctrl-C (train.c): stop after the step in progress ---- */
void tr_catch_interrupt(bool on);
bool tr_interrupted(void);

#endif
