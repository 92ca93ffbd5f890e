/* The models anygrad train builds: the named ones (layer descriptions) and
 * --layers, and which model and input shape a checkpoint holds. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "anygrad.h"
#include "cli.h"
#include "train.h"

/* ---- models --------------------------------------------------------------- */


static const model_spec MODELS[] = {
    {"mlp", CLI_MLP_LAYERS, 2, "4.weight", "ReLU MLP"},
    {"cnn", CLI_CNN_LAYERS, 4, "10.weight", "TF-tutorial CNN"},
};
#define NMODELS ((int)(sizeof MODELS / sizeof MODELS[0]))

const model_spec *tr_find_model(const char *name)
{
    for (int i = 0; name && i < NMODELS; i++)
        if (!strcmp(MODELS[i].name, name)) return &MODELS[i];
    return NULL;
}

/* A --layers model: its name is "custom" and it is described by itself. */
model_spec tr_custom_model(const char *layers)
{
    return (model_spec){"custom", layers, 0, NULL, NULL};
}

bool tr_takes_images(const model_spec *ms) { return cli_layers_take_images(ms->layers); }

ag_module *tr_build_model(const model_spec *ms, const dims *d)
{
    char err[512];
    ag_module *m = cli_layers_build(ms->layers, d->c, d->h, d->w, d->classes, err, sizeof err);
    if (!m) fprintf(stderr, "anygrad: the model \"%s\": %s\n", ms->layers, err);
    return m;
}

void tr_describe(const model_spec *ms, const dims *d, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s%lldx%lldx%lld -> %s -> %lld classes", ms->about ? ms->about : "",
             ms->about ? " on " : "", (long long)d->c, (long long)d->h, (long long)d->w, ms->layers,
             (long long)d->classes);
}

/* The model a checkpoint holds: its own record, else the shape of "0.weight". */
const model_spec *tr_model_of(const ag_tensor_dict *d)
{
    const model_spec *ms = tr_find_model(ag_tensor_dict_meta(d, META "model"));
    ag_tensor *w = ag_tensor_dict_get(d, "0.weight");
    for (int i = 0; !ms && w && i < NMODELS; i++)
        if (ag_ndim(w) == MODELS[i].first_weight_ndim) ms = &MODELS[i];
    return ms;
}

/* The model to rebuild: --model when given, else the checkpoint's layer
 * description (into *custom, pointing into d), else its named model. */
const model_spec *tr_spec_of(const ag_tensor_dict *d, const char *model_opt, model_spec *custom)
{
    if (model_opt) return tr_find_model(model_opt);
    const char *layers = ag_tensor_dict_meta(d, META "layers");
    if (layers) {
        *custom = tr_custom_model(layers);
        return custom;
    }
    return tr_model_of(d);
}

/* The sample shape and classes a checkpoint's model was built for: its record,
 * else (weights from elsewhere) the classes from its last layer and the
 * sample shape left 0, for the data to decide. */
dims tr_dims_of(const ag_tensor_dict *d, const model_spec *ms)
{
    dims r = {0, 0, 0, 0};
    const char *in = ag_tensor_dict_meta(d, META "input"), *cl = ag_tensor_dict_meta(d, META "classes");
    long long c, h, w, k;
    char end;
    /* each below 2^20 and their product below 2^31: no overflow downstream */
    if (in && sscanf(in, "%lldx%lldx%lld%c", &c, &h, &w, &end) == 3 && c > 0 && h > 0 && w > 0 &&
        c < (1 << 20) && h < (1 << 20) && w < (1 << 20) && c * h * w < ((long long)1 << 31))
        r.c = c, r.h = h, r.w = w;
    if (cl && sscanf(cl, "%lld%c", &k, &end) == 1 && k > 1 && k <= 65536) r.classes = k;
    ag_tensor *out = ms ? ag_tensor_dict_get(d, ms->out_weight) : NULL;
    if (!r.classes && out && ag_ndim(out) == 2) r.classes = ag_dim(out, 0);
    return r;
}
