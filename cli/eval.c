/* anygrad eval (test loss and accuracy of a checkpoint) and anygrad predict
 * (class and probabilities of every sample, as CSV). */
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

/* ---- anygrad eval ---------------------------------------------------------------- */

int cli_eval(const cli_eval_opts *o)
{
    const char *file = o->file, *model = o->model, *data = o->data, *device = o->device;
    if (!cli_use_device("eval", device)) return 2;
    ag_tensor_dict *d = ag_safetensors_load(file);
    if (!d) {
        fprintf(stderr, "anygrad eval: %s\n", ag_last_error());
        return 1;
    }
    const char *kind = ag_tensor_dict_meta(d, META "model");
    if (!model && kind && !strcmp(kind, "gpt")) {
        fprintf(stderr, "anygrad eval: %s is a language model (--model gpt): its validation loss is "
                        "in its training output and log; anygrad sample %s writes text with it\n",
                file, file);
        ag_tensor_dict_free(d);
        return 2;
    }
    model_spec custom;
    const model_spec *ms = tr_spec_of(d, model, &custom);
    char epoch[96] = "";
    const char *es = ag_tensor_dict_meta(d, META "epoch_step");
    if (ag_tensor_dict_meta(d, "epoch")) /* a Ctrl-C'ed run: some steps of the next epoch too */
        snprintf(epoch, sizeof epoch, ", epoch %s%s%s%s", ag_tensor_dict_meta(d, "epoch"),
                 es ? " and " : "", es ? es : "", es ? " steps" : "");
    dims dm = tr_dims_of(d, ms);
    const char *lcs = ag_tensor_dict_meta(d, META "label-column");
    int64_t label_col = lcs ? atoll(lcs) : -1;
    int rc = 1;
    ag_module *m = NULL;
    ag_loader *test = NULL;
    ag_tensor *x, *y;
    norm z = {0};
    bool csv = tr_is_csv(data);
    if (!ms) {
        fprintf(stderr, "anygrad eval: %s: cannot tell the model from the file; pass --model\n", file);
        ag_tensor_dict_free(d);
        return 2;
    }
    /* the test data first: a checkpoint without its sample shape takes theirs */
    if (!(csv ? tr_load_csv(data, label_col, 0, ms, &dm, &x, &y)
              : tr_load_split(data, "t10k", 0, ms, &dm, &x, &y)))
        goto out;
    test = tr_make_loader(x, y, EVAL_BATCH, false, 0);
    m = test ? tr_build_model(ms, &dm) : NULL;
    if (!m) goto out; /* said why */
    if (ag_module_load(m, file) != AG_OK) {
        fprintf(stderr, "anygrad eval: loading %s as %s: %s\n", file, ms->name, ag_last_error());
        goto out;
    }
    if (!tr_norm_from_meta(d, dm.c * dm.h * dm.w, &z)) {
        /* Weights from elsewhere: normalise as training did, with the training
         * images' statistics (a CSV file is evaluated alone: it has none). */
        ag_loader *tr = !csv && tr_norm_alloc(&z, 1) && tr_load_split(data, "train", 0, ms, &dm, &x, &y)
                            ? tr_make_loader(x, y, EVAL_BATCH, false, 0) : NULL;
        bool ok = tr && ag_loader_stats(tr, false, z.mean, z.sd) == AG_OK;
        ag_loader_free(tr);
        if (!ok) {
            fprintf(stderr, "anygrad eval: %s\n", csv ? "the checkpoint holds no input statistics "
                                                       "(norm_mean, norm_std) for CSV data"
                                                     : ag_last_error());
            goto out;
        }
    }
    double loss, acc;
    if (!test || ag_loader_set_normalize(test, z.n, z.mean, z.sd) != AG_OK ||
        !tr_evaluate(m, test, &loss, &acc)) {
        fprintf(stderr, "anygrad eval: %s\n", ag_last_error());
        goto out;
    }
    printf("%s: %s, %lld parameters%s\n", file, ms->name, (long long)ag_module_num_parameters(m),
           epoch);
    printf("test loss %.4f\ntest accuracy %.4f (%lld %s)\n", loss, acc,
           (long long)ag_loader_size(test), csv ? "rows" : "images");
    rc = 0;
out:
    ag_tensor_dict_free(d);
    tr_norm_free(&z);
    ag_loader_free(test);
    ag_module_free(m);
    return rc;
}

/* ---- anygrad predict ------------------------------------------------------------- */

int cli_predict(const cli_eval_opts *o)
{
    if (!cli_use_device("predict", o->device)) return 2;
    ag_tensor_dict *d = ag_safetensors_load(o->file);
    if (!d) {
        fprintf(stderr, "anygrad predict: %s\n", ag_last_error());
        return 1;
    }
    model_spec custom;
    const model_spec *ms = tr_spec_of(d, o->model, &custom);
    dims dm = ms ? tr_dims_of(d, ms) : (dims){0, 0, 0, 0};
    const char *lcs = ag_tensor_dict_meta(d, META "label-column");
    norm z = {0};
    int rc = 1;
    ag_module *m = NULL;
    ag_loader *l = NULL;
    char err[512] = "";
    if (!ms || !dm.w || !dm.classes || !tr_norm_from_meta(d, dm.c * dm.h * dm.w, &z)) {
        fprintf(stderr, "anygrad predict: %s: not a checkpoint of anygrad train (it records the "
                        "model, its input shape, classes and input statistics)\n", o->file);
        rc = 2;
        goto out;
    }
    ag_scope_begin();
    ag_tensor *x = tr_is_csv(o->data) ? tr_csv_inputs(o->data, lcs ? atoll(lcs) : -1, dm.c * dm.h * dm.w)
                                   : tr_idx_inputs(o->data, ms, &dm);
    if (x && tr_is_csv(o->data) && tr_takes_images(ms)) /* rows of C*H*W pixels */
        x = ag_reshape(x, 4, (const int64_t[]){ag_dim(x, 0), dm.c, dm.h, dm.w});
    ag_loader_config c = {.batch_size = EVAL_BATCH};
    l = x ? ag_loader_new(x, NULL, &c) : NULL;
    ag_scope_end();
    if (!x) goto out; /* said why */
    m = l ? tr_build_model(ms, &dm) : NULL;
    if (l && !m) goto out; /* said why */
    if (!l || ag_module_load(m, o->file) != AG_OK ||
        ag_loader_set_normalize(l, z.n, z.mean, z.sd) != AG_OK) {
        fprintf(stderr, "anygrad predict: %s\n", ag_last_error());
        goto out;
    }
    cli_outfile out = {.f = stdout};
    if (o->out && !cli_out_open(&out, o->out, err, sizeof err)) {
        fprintf(stderr, "anygrad predict: %s\n", err);
        goto out;
    }
    float *p = malloc((size_t)(EVAL_BATCH * dm.classes) * sizeof *p);
    bool ok = p != NULL;
    int64_t index = 0;
    ag_module_train(m, false);
    ag_no_grad_begin();
    while (ok) {
        ag_tensor *bx;
        ag_scope_begin();
        if (!ag_loader_next(l, &bx, NULL)) {
            ok = ag_last_status() == AG_OK;
            ag_scope_end();
            break;
        }
        int64_t b = ag_dim(bx, 0);
        ag_tensor *prob = ag_softmax(ag_module_forward(m, bx), 1);
        ok = prob && ag_to_host(prob, p, (size_t)(b * dm.classes) * sizeof *p) == AG_OK;
        if (ok && index == 0) { /* the header once the model has run */
            fprintf(out.f, "index,class");
            for (int64_t k = 0; k < dm.classes; k++) fprintf(out.f, ",p%lld", (long long)k);
            fprintf(out.f, "\n");
        }
        for (int64_t i = 0; ok && i < b; i++, index++) {
            const float *row = p + i * dm.classes;
            int64_t best = 0;
            for (int64_t k = 1; k < dm.classes; k++)
                if (row[k] > row[best]) best = k;
            fprintf(out.f, "%lld,%lld", (long long)index, (long long)best);
            for (int64_t k = 0; k < dm.classes; k++) fprintf(out.f, ",%.6g", (double)row[k]);
            fprintf(out.f, "\n");
        }
        ag_scope_end();
    }
    ag_no_grad_end();
    free(p);
    if (!ok) fprintf(stderr, "anygrad predict: %s\n", p ? ag_last_error() : "out of memory");
    if (o->out) {
        if (!ok) fclose(out.f), remove(out.tmp);
        else if (!cli_out_close(&out, err, sizeof err)) ok = false, fprintf(stderr, "anygrad predict: %s\n", err);
    } else if (fflush(stdout) != 0) {
        ok = false;
    }
    if (ok && o->out) fprintf(stderr, "%lld predictions: %s\n", (long long)index, o->out);
    rc = ok ? 0 : 1;
out:
    ag_loader_free(l);
    ag_module_free(m);
    tr_norm_free(&z);
    ag_tensor_dict_free(d);
    return rc;
}
