/* Module and training checkpoints on top of safetensors. Loading validates the
 * whole file against the module (and optimizer) before changing anything, so a
 * bad file leaves the model as it was. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "nn_internal.h"
#include "optim_state.h"

#define OPT_PREFIX "optimizer."

static bool is_opt_key(const char *name) { return !strncmp(name, OPT_PREFIX, strlen(OPT_PREFIX)); }

/* Copies src's elements into dst through the host: the two may live on
 * different devices. */
static ag_status copy_into(ag_tensor *dst, const ag_tensor *src)
{
    size_t bytes = (size_t)ag_numel(src) * ag_dtype_size(src->dtype);
    void *host = malloc(bytes ? bytes : 1);
    if (!host) return ag_set_error(AG_ERR_OOM, "checkpoint: no host memory for %zu bytes", bytes);
    ag_status s = ag_to_host(src, host, bytes);
    if (s == AG_OK) s = ag_from_host(dst, host, bytes);
    free(host);
    return s;
}

/* dst's and src's dtype and shape agree, or an error naming the tensor. */
static ag_status matches(const char *path, const char *name, const ag_tensor *dst,
                         const ag_tensor *src)
{
    if (!src)
        return ag_set_error(AG_ERR_IO, "checkpoint %s: '%s' is missing", path, name);
    char a[160], b[160];
    ag_shape_str(dst, a, sizeof a);
    ag_shape_str(src, b, sizeof b);
    if (dst->dtype != src->dtype || !ag__same_shape(dst, src))
        return ag_set_error(dst->dtype != src->dtype ? AG_ERR_DTYPE : AG_ERR_SHAPE,
                            "checkpoint %s: '%s' is %s in the file but %s in the model", path,
                            name, b, a);
    return AG_OK;
}

static ag_status check_module(const char *path, ag_module *m, const ag_tensor_dict *d)
{
    int n;
    ag_tensor *const *t = ag_module_state(m, &n);
    const char *const *names = ag_module_state_names(m, &n);
    if (!t || !names) return ag_last_status();
    for (int i = 0; i < n; i++) {
        ag_status s = matches(path, names[i], t[i], ag_tensor_dict_get(d, names[i]));
        if (s != AG_OK) return s;
    }
    for (int k = 0; k < d->n; k++) {
        if (is_opt_key(d->names[k]) || ag_module_get(m, d->names[k])) continue;
        return ag_set_error(AG_ERR_IO, "checkpoint %s: '%s' is not part of the model", path,
                            d->names[k]);
    }
    return AG_OK;
}

static ag_status apply_module(ag_module *m, const ag_tensor_dict *d)
{
    int n;
    ag_tensor *const *t = ag_module_state(m, &n);
    const char *const *names = ag_module_state_names(m, &n);
    for (int i = 0; i < n; i++) {
        ag_status s = copy_into(t[i], ag_tensor_dict_get(d, names[i]));
        if (s != AG_OK) return s;
    }
    return ag__module_sync_counters(m);
}

ag_status ag_module_save(ag_module *m, const char *path)
{
    return ag_checkpoint_save(path, m, NULL, -1);
}

ag_status ag_module_load(ag_module *m, const char *path)
{
    if (!m || !path) return ag_set_error(AG_ERR_ARG, "ag_module_load: module or path is NULL");
    ag_tensor_dict *d = ag_safetensors_load(path);
    if (!d) return ag_last_status();
    ag_status s = check_module(path, m, d);
    if (s == AG_OK) s = apply_module(m, d);
    ag_tensor_dict_free(d);
    return s;
}

/* ---- training checkpoints ----------------------------------------------------- */

typedef struct strlist {
    int n, cap;
    char **s;
    bool oom;
} strlist;

static void push(strlist *l, char *s)
{
    if (!s) {
        l->oom = true;
        return;
    }
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 16;
        char **ns = realloc(l->s, (size_t)cap * sizeof *ns);
        if (!ns) {
            free(s);
            l->oom = true;
            return;
        }
        l->s = ns;
        l->cap = cap;
    }
    l->s[l->n++] = s;
}

static char *fmt(const char *f, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, f);
    vsnprintf(s, (size_t)n + 1, f, ap);
    va_end(ap);
    return s;
}

static void free_list(strlist *l)
{
    for (int i = 0; i < l->n; i++) free(l->s[i]);
    free(l->s);
}

static char *param_steps_str(const ag_optim *opt)
{
    int n = ag__optim_num_params(opt);
    size_t cap = (size_t)n * 21 + 1;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t at = 0;
    s[0] = '\0';
    for (int i = 0; i < n; i++)
        at += (size_t)snprintf(s + at, cap - at, "%s%" PRId64, i ? "," : "",
                               ag__optim_param_steps(opt, i));
    return s;
}

/* Names and tensors (module state, then optimizer slots) plus metadata pairs. */
static ag_status collect(ag_module *m, const ag_optim *opt, int64_t epoch, strlist *names,
                         ag_tensor ***tensors, int *nt, strlist *meta)
{
    int n;
    ag_tensor *const *st = ag_module_state(m, &n);
    const char *const *sn = ag_module_state_names(m, &n);
    if (!st || !sn) return ag_last_status();
    int np = opt ? ag__optim_num_params(opt) : 0;
    *tensors = calloc((size_t)n + 2 * (size_t)np + 1, sizeof **tensors);
    if (!*tensors) return ag_set_error(AG_ERR_OOM, "checkpoint: out of host memory");
    for (int i = 0; i < n; i++) {
        push(names, strdup(sn[i]));
        (*tensors)[(*nt)++] = st[i];
    }
    for (int i = 0; i < np; i++)
        for (int slot = 0; slot < 2; slot++) {
            const char *nm;
            ag_tensor *t = ag__optim_state(opt, i, slot, &nm);
            if (!t) continue;
            push(names, fmt(OPT_PREFIX "state.%d.%s", i, nm));
            (*tensors)[(*nt)++] = t;
        }
    push(meta, strdup("format"));
    push(meta, strdup("pt"));
    if (epoch >= 0) {
        push(meta, strdup("epoch"));
        push(meta, fmt("%" PRId64, epoch));
    }
    if (opt) {
        push(meta, strdup(OPT_PREFIX "kind"));
        push(meta, strdup(ag__optim_kind_name(opt)));
        push(meta, strdup(OPT_PREFIX "lr"));
        push(meta, fmt("%.9g", (double)ag_optim_lr(opt)));
        push(meta, strdup(OPT_PREFIX "steps"));
        push(meta, fmt("%" PRId64, ag_optim_steps(opt)));
        push(meta, strdup(OPT_PREFIX "param_steps"));
        push(meta, param_steps_str(opt));
    }
    if (names->oom || meta->oom) return ag_set_error(AG_ERR_OOM, "checkpoint: out of host memory");
    return AG_OK;
}

ag_status ag_checkpoint_save_meta(const char *path, ag_module *m, const ag_optim *opt,
                                  int64_t epoch, int nmeta, const char *const *meta_kv)
{
    if (!m || !path) return ag_set_error(AG_ERR_ARG, "checkpoint save: module or path is NULL");
    if (nmeta < 0 || (nmeta > 0 && !meta_kv))
        return ag_set_error(AG_ERR_ARG, "checkpoint save: %d metadata pairs but no list", nmeta);
    strlist names = {0}, meta = {0};
    ag_tensor **tensors = NULL;
    int nt = 0;
    ag_status s = collect(m, opt, epoch, &names, &tensors, &nt, &meta);
    /* the caller's pairs may not take the checkpoint's keys, whether this save
     * writes them or not: loading relies on them */
    for (int i = 0; s == AG_OK && i < nmeta; i++) {
        const char *k = meta_kv[2 * i], *v = meta_kv[2 * i + 1];
        if (!k || !v) {
            s = ag_set_error(AG_ERR_ARG, "checkpoint save: metadata pair %d has a NULL", i);
            break;
        }
        if (!strcmp(k, "format") || !strcmp(k, "epoch") ||
            !strncmp(k, OPT_PREFIX, strlen(OPT_PREFIX))) {
            s = ag_set_error(AG_ERR_ARG, "checkpoint save: metadata key \"%s\" is the "
                                         "checkpoint's own", k);
            break;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(meta_kv[2 * j], k)) {
                s = ag_set_error(AG_ERR_ARG, "checkpoint save: metadata key \"%s\" given twice", k);
                break;
            }
        push(&meta, strdup(k));
        push(&meta, strdup(v));
    }
    if (s == AG_OK && meta.oom) s = ag_set_error(AG_ERR_OOM, "checkpoint: out of host memory");
    if (s == AG_OK)
        s = ag_safetensors_save(path, nt, (const char *const *)names.s, tensors, meta.n / 2,
                                (const char *const *)meta.s);
    free(tensors);
    free_list(&names);
    free_list(&meta);
    return s;
}

ag_status ag_checkpoint_save(const char *path, ag_module *m, const ag_optim *opt, int64_t epoch)
{
    return ag_checkpoint_save_meta(path, m, opt, epoch, 0, NULL);
}

static bool parse_i64(const char *s, const char **end, int64_t *out)
{
    if (!s || *s < '0' || *s > '9') return false;
    errno = 0;
    char *e;
    long long v = strtoll(s, &e, 10);
    if (errno) return false;
    *out = v;
    if (end) *end = e;
    else if (*e) return false;
    return true;
}

/* Steps, per-parameter steps and lr from the metadata, all checked. */
static ag_status read_opt_meta(const char *path, const ag_tensor_dict *d, const ag_optim *opt,
                               int64_t *steps, int64_t *psteps, float *lr)
{
    const char *kind = ag_tensor_dict_meta(d, OPT_PREFIX "kind");
    if (!kind)
        return ag_set_error(AG_ERR_IO, "checkpoint %s: holds no optimizer state", path);
    if (strcmp(kind, ag__optim_kind_name(opt)))
        return ag_set_error(AG_ERR_ARG, "checkpoint %s: optimizer is %s in the file but %s here",
                            path, kind, ag__optim_kind_name(opt));
    const char *lrs = ag_tensor_dict_meta(d, OPT_PREFIX "lr");
    char *e = NULL;
    *lr = lrs ? strtof(lrs, &e) : -1.0f;
    if (!lrs || *e || !(*lr >= 0.0f))
        return ag_set_error(AG_ERR_IO, "checkpoint %s: bad or missing optimizer.lr", path);
    /* The ranges ag__optim_restore_steps accepts, checked here so that a bad
     * count fails before the model is changed. */
    if (!parse_i64(ag_tensor_dict_meta(d, OPT_PREFIX "steps"), NULL, steps) ||
        *steps > AG_OPTIM_MAX_STEPS)
        return ag_set_error(AG_ERR_IO, "checkpoint %s: bad, missing or out-of-range "
                                       "optimizer.steps", path);
    const char *p = ag_tensor_dict_meta(d, OPT_PREFIX "param_steps");
    int np = ag__optim_num_params(opt);
    for (int i = 0; i < np; i++) {
        if (!p || !parse_i64(p, &p, &psteps[i]) || (*p != (i + 1 < np ? ',' : '\0')))
            return ag_set_error(AG_ERR_IO, "checkpoint %s: optimizer.param_steps does not list "
                                           "%d step counts (the optimizer has %d parameters)",
                                path, np, np);
        if (psteps[i] > AG_OPTIM_MAX_STEPS)
            return ag_set_error(AG_ERR_IO, "checkpoint %s: optimizer.param_steps: count %" PRId64
                                           " of parameter %d is out of range", path, psteps[i], i);
        if (*p) p++;
    }
    return AG_OK;
}

static ag_status check_opt_tensors(const char *path, const ag_tensor_dict *d, const ag_optim *opt)
{
    int np = ag__optim_num_params(opt);
    for (int i = 0; i < np; i++)
        for (int slot = 0; slot < 2; slot++) {
            const char *nm;
            ag_tensor *t = ag__optim_state(opt, i, slot, &nm);
            if (!t) continue;
            char key[96];
            snprintf(key, sizeof key, OPT_PREFIX "state.%d.%s", i, nm);
            ag_status s = matches(path, key, t, ag_tensor_dict_get(d, key));
            if (s != AG_OK) return s;
        }
    /* A state entry beyond the optimizer's parameters means a different model. */
    for (int k = 0; k < d->n; k++) {
        int idx;
        if (sscanf(d->names[k], OPT_PREFIX "state.%d.", &idx) == 1 && (idx < 0 || idx >= np))
            return ag_set_error(AG_ERR_ARG, "checkpoint %s: '%s' but the optimizer has %d "
                                            "parameters", path, d->names[k], np);
    }
    return AG_OK;
}

static ag_status apply_opt(const ag_tensor_dict *d, ag_optim *opt, int64_t steps,
                           const int64_t *psteps, float lr)
{
    int np = ag__optim_num_params(opt);
    for (int i = 0; i < np; i++)
        for (int slot = 0; slot < 2; slot++) {
            const char *nm;
            ag_tensor *t = ag__optim_state(opt, i, slot, &nm);
            if (!t) continue;
            char key[96];
            snprintf(key, sizeof key, OPT_PREFIX "state.%d.%s", i, nm);
            ag_status s = copy_into(t, ag_tensor_dict_get(d, key));
            if (s != AG_OK) return s;
        }
    ag_status s = ag__optim_restore_steps(opt, steps, psteps);
    return s == AG_OK ? ag_optim_set_lr(opt, lr) : s;
}

ag_status ag_checkpoint_load(const char *path, ag_module *m, ag_optim *opt, int64_t *epoch)
{
    if (!m || !path) return ag_set_error(AG_ERR_ARG, "checkpoint load: module or path is NULL");
    ag_tensor_dict *d = ag_safetensors_load(path);
    if (!d) return ag_last_status();
    int np = opt ? ag__optim_num_params(opt) : 0;
    int64_t steps = 0, ep = -1, *psteps = calloc((size_t)np + 1, sizeof *psteps);
    float lr = 0.0f;
    ag_status s = psteps ? check_module(path, m, d)
                         : ag_set_error(AG_ERR_OOM, "checkpoint: out of host memory");
    if (s == AG_OK && opt) s = read_opt_meta(path, d, opt, &steps, psteps, &lr);
    if (s == AG_OK && opt) s = check_opt_tensors(path, d, opt);
    const char *es = ag_tensor_dict_meta(d, "epoch");
    if (s == AG_OK && es && !parse_i64(es, NULL, &ep))
        s = ag_set_error(AG_ERR_IO, "checkpoint %s: bad epoch '%s'", path, es);
    if (s == AG_OK) s = apply_module(m, d);
    if (s == AG_OK && opt) s = apply_opt(d, opt, steps, psteps, lr);
    if (s == AG_OK && epoch) *epoch = ep;
    free(psteps);
    ag_tensor_dict_free(d);
    return s;
}
