/* Models from a one-line description (anygrad train --layers), e.g.
 *   conv 32 5 pad=2, relu, maxpool 2, flatten, linear 128, relu, dropout 0.2, linear
 * Layers are separated by commas; each is a name, positional numbers and
 * key=value options. Shapes are inferred from the data's sample shape, and a
 * final `linear` without a size gets one output per class. The modules and
 * their parameter names (0.weight, 3.bias, ...) are PyTorch's nn.Sequential. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_LAYERS 64
#define SEP " \t\r\n\v\f"
#define MAX_ARGS 4

typedef struct layer_words {
    char name[24];
    int npos;
    double pos[MAX_ARGS];
    int nopt;
    char key[MAX_ARGS][16];
    double val[MAX_ARGS];
} layer_words;

/* What flows between layers: an image [C, H, W] or F features. */
typedef struct flow {
    bool image;
    int64_t c, h, w, f;
} flow;

static bool say(char *err, size_t errsz, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static bool say(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return false;
}

/* A finite number, and no larger than any size a layer can take. */
static bool number(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return end != s && *end == '\0' && *out >= -1e12 && *out <= 1e12;
}

/* One layer's words ("conv 32 5 pad=2"); k is its position, for messages. */
static bool parse_layer(const char *text, int k, layer_words *L, char *err, size_t errsz)
{
    memset(L, 0, sizeof *L);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", text);
    int nw = 0;
    for (char *save = NULL, *w = strtok_r(buf, SEP, &save); w; w = strtok_r(NULL, SEP, &save), nw++) {
        if (nw == 0) {
            if (strlen(w) >= sizeof L->name) return say(err, errsz, "layer %d: unknown layer '%s'", k + 1, w);
            for (char *p = w; *p; p++) *p = (char)tolower((unsigned char)*p);
            snprintf(L->name, sizeof L->name, "%s", w);
            continue;
        }
        char *eq = strchr(w, '=');
        double v;
        if (eq) {
            *eq = '\0';
            bool twice = false;
            for (int i = 0; i < L->nopt; i++) twice |= !strcmp(L->key[i], w);
            if (L->nopt == MAX_ARGS || !*w || twice || strlen(w) >= sizeof L->key[0] ||
                !number(eq + 1, &v))
                return say(err, errsz, "layer %d (%s): bad option '%s=%s'%s", k + 1, L->name, w,
                           eq + 1, twice ? " (given twice)" : "");
            snprintf(L->key[L->nopt], sizeof L->key[0], "%s", w);
            L->val[L->nopt++] = v;
        } else {
            if (L->npos == MAX_ARGS || !number(w, &v))
                return say(err, errsz, "layer %d (%s): '%s' is not a number (finite, at most 1e12)", k + 1, L->name, w);
            L->pos[L->npos++] = v;
        }
    }
    if (nw == 0) return say(err, errsz, "layer %d is empty (two commas in a row?)", k + 1);
    return true;
}

/* An option's value (def when absent); unknown options are refused by check. */
static double opt(const layer_words *L, const char *key, double def)
{
    for (int i = 0; i < L->nopt; i++)
        if (!strcmp(L->key[i], key)) return L->val[i];
    return def;
}

/* The layer takes npos_lo..npos_hi numbers, the options listed (space-separated). */
static bool check(const layer_words *L, int k, int lo, int hi, const char *opts, char *err, size_t errsz)
{
    if (L->npos < lo || L->npos > hi)
        return say(err, errsz, "layer %d (%s): %d number%s given, %d%s%d expected", k + 1, L->name,
                   L->npos, L->npos == 1 ? "" : "s", lo, hi > lo ? " to " : "", hi > lo ? hi : lo);
    for (int i = 0; i < L->nopt; i++) {
        char pat[24];
        snprintf(pat, sizeof pat, " %s ", L->key[i]);
        char all[96];
        snprintf(all, sizeof all, " %s ", opts);
        if (!strstr(all, pat))
            return say(err, errsz, "layer %d (%s): unknown option '%s'%s%s", k + 1, L->name, L->key[i],
                       *opts ? "; it takes " : "", opts);
    }
    for (int i = 0; i < L->npos; i++)
        if (L->pos[i] != (double)(int64_t)L->pos[i] && strcmp(L->name, "dropout") && /* |v| <= 1e12 */
            strcmp(L->name, "leakyrelu"))
            return say(err, errsz, "layer %d (%s): %g is not a whole number", k + 1, L->name, L->pos[i]);
    return true;
}

/* Sizes stay at or below 2^20 (2^30 for features), so products of three of
 * them cannot overflow. */
static bool whole(double v, int64_t lo, int64_t *out)
{
    if (!(v >= (double)lo && v <= (double)(1 << 20))) return false;
    *out = (int64_t)v;
    return v == (double)*out;
}

static bool is_image_layer(const char *name)
{
    return !strcmp(name, "conv") || !strcmp(name, "maxpool") || !strcmp(name, "avgpool");
}

bool cli_layers_take_images(const char *desc)
{
    layer_words L;
    char first[256], err[8];
    snprintf(first, sizeof first, "%s", desc ? desc : "");
    first[strcspn(first, ",")] = '\0';
    return parse_layer(first, 0, &L, err, sizeof err) && is_image_layer(L.name);
}

/* Pooling or convolution output size along one axis. */
static int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    int64_t span = d * (k - 1) + 1;
    return in + 2 * p < span ? 0 : (in + 2 * p - span) / s + 1;
}

ag_module *cli_layers_build(const char *desc, int64_t c, int64_t h, int64_t w, int64_t classes,
                            char *err, size_t errsz)
{
    char text[2048];
    if (!desc || strlen(desc) >= sizeof text)
        return say(err, errsz, "the layer description is empty or longer than %zu characters",
                   sizeof text - 1), NULL;
    snprintf(text, sizeof text, "%s", desc);
    char *parts[MAX_LAYERS];
    int n = 0;
    for (char *p = text;; n++) {
        if (n == MAX_LAYERS) return say(err, errsz, "more than %d layers", MAX_LAYERS), NULL;
        parts[n] = p;
        char *comma = strchr(p, ',');
        if (!comma) {
            n++;
            break;
        }
        *comma = '\0';
        p = comma + 1;
    }
    layer_words L[MAX_LAYERS];
    for (int k = 0; k < n; k++)
        if (!parse_layer(parts[k], k, &L[k], err, errsz)) return NULL;
    flow f = {.image = is_image_layer(L[0].name), .c = c, .h = h, .w = w, .f = c * h * w};
    if (f.image && (h < 1 || w < 1))
        return say(err, errsz, "layer 1 (%s) needs images; the data are %lld features", L[0].name,
                   (long long)f.f), NULL;
    ag_module *mods[MAX_LAYERS] = {0};
    bool ok = true;
    for (int k = 0; k < n && ok; k++) {
        const layer_words *l = &L[k];
        const char *nm = l->name;
        ag_module *m = NULL;
        if (!strcmp(nm, "linear")) {
            int64_t out = classes;
            ok = check(l, k, k + 1 == n ? 0 : 1, 1, "bias", err, errsz);
            if (ok && l->npos && !whole(l->pos[0], 1, &out))
                ok = say(err, errsz, "layer %d (linear): %g outputs", k + 1, l->pos[0]);
            if (ok && f.image)
                ok = say(err, errsz, "layer %d (linear) gets images of %lldx%lldx%lld: put flatten "
                                     "before it", k + 1, (long long)f.c, (long long)f.h, (long long)f.w);
            if (ok) {
                m = ag_linear_new(f.f, out, opt(l, "bias", 1) != 0);
                f.f = out;
            }
        } else if (!strcmp(nm, "conv")) {
            int64_t oc = 0, kk = 1, s = 1, p = 0, d = 1;
            ok = check(l, k, 2, 2, "stride pad dilation bias", err, errsz);
            if (ok && !(whole(l->pos[0], 1, &oc) && whole(l->pos[1], 1, &kk) &&
                        whole(opt(l, "stride", 1), 1, &s) && whole(opt(l, "pad", 0), 0, &p) &&
                        whole(opt(l, "dilation", 1), 1, &d)))
                ok = say(err, errsz, "layer %d (conv): channels, kernel, stride and dilation must be "
                                     ">= 1, pad >= 0, each at most 2^20", k + 1);
            if (ok && !f.image)
                ok = say(err, errsz, "layer %d (conv) gets %lld features, not images", k + 1, (long long)f.f);
            int64_t oh = ok ? out_size(f.h, kk, s, p, d) : 0, ow = ok ? out_size(f.w, kk, s, p, d) : 0;
            if (ok && (oh < 1 || ow < 1))
                ok = say(err, errsz, "layer %d (conv %lld): a %lldx%lld kernel does not fit %lldx%lld "
                                     "images", k + 1, (long long)oc, (long long)kk, (long long)kk,
                         (long long)f.h, (long long)f.w);
            if (ok) {
                ag_conv2d_params cp = {{(int)s, (int)s}, {(int)p, (int)p}, {(int)d, (int)d}, 1};
                m = ag_conv2d_new(f.c, oc, (int)kk, (int)kk, &cp, opt(l, "bias", 1) != 0);
                f.c = oc, f.h = oh, f.w = ow, f.f = oc * oh * ow;
            }
        } else if (!strcmp(nm, "maxpool") || !strcmp(nm, "avgpool")) {
            int64_t kk = 1, s = 1, p = 0;
            ok = check(l, k, 1, 1, "stride pad", err, errsz);
            if (ok && !(whole(l->pos[0], 1, &kk) && whole(opt(l, "stride", l->pos[0]), 1, &s) &&
                        whole(opt(l, "pad", 0), 0, &p) && p <= kk / 2))
                ok = say(err, errsz, "layer %d (%s): kernel and stride >= 1, pad from 0 to half the "
                                     "kernel", k + 1, nm);
            if (ok && !f.image)
                ok = say(err, errsz, "layer %d (%s) gets %lld features, not images", k + 1, nm, (long long)f.f);
            int64_t oh = ok ? out_size(f.h, kk, s, p, 1) : 0, ow = ok ? out_size(f.w, kk, s, p, 1) : 0;
            if (ok && (oh < 1 || ow < 1))
                ok = say(err, errsz, "layer %d (%s %lld) does not fit %lldx%lld images", k + 1, nm,
                         (long long)kk, (long long)f.h, (long long)f.w);
            if (ok) {
                ag_pool2d_params pp = {{(int)kk, (int)kk}, {(int)s, (int)s}, {(int)p, (int)p}};
                m = nm[0] == 'm' ? ag_max_pool2d_new(&pp) : ag_avg_pool2d_new(&pp);
                f.h = oh, f.w = ow, f.f = f.c * oh * ow;
            }
        } else if (!strcmp(nm, "flatten")) {
            ok = check(l, k, 0, 0, "", err, errsz);
            if (ok) {
                m = ag_flatten_new();
                f.image = false;
            }
        } else if (!strcmp(nm, "dropout")) {
            ok = check(l, k, 1, 1, "", err, errsz);
            if (ok && !(l->pos[0] >= 0.0 && l->pos[0] < 1.0))
                ok = say(err, errsz, "layer %d (dropout): probability %g is not in [0, 1)", k + 1, l->pos[0]);
            if (ok) m = ag_dropout_new((float)l->pos[0]);
        } else if (!strcmp(nm, "batchnorm")) {
            ok = check(l, k, 0, 0, "", err, errsz);
            if (ok) m = ag_batch_norm_new(f.image ? f.c : f.f, f.image ? 2 : 1);
        } else if (!strcmp(nm, "layernorm")) {
            ok = check(l, k, 0, 0, "", err, errsz);
            int64_t shape[3] = {f.c, f.h, f.w};
            if (ok) m = f.image ? ag_layer_norm_new(3, shape) : ag_layer_norm_new(1, &f.f);
        } else if (!strcmp(nm, "leakyrelu")) {
            ok = check(l, k, 0, 1, "", err, errsz);
            if (ok) m = ag_leaky_relu_new(l->npos ? (float)l->pos[0] : 0.01f);
        } else {
            static const struct {
                const char *name;
                ag_module *(*make)(void);
            } ACT[] = {{"relu", ag_relu_new}, {"gelu", ag_gelu_new}, {"tanh", ag_tanh_new},
                       {"sigmoid", ag_sigmoid_new}, {"silu", ag_silu_new}};
            int a = -1;
            for (int i = 0; i < (int)(sizeof ACT / sizeof ACT[0]); i++)
                if (!strcmp(nm, ACT[i].name)) a = i;
            if (a < 0)
                ok = say(err, errsz, "layer %d: unknown layer '%s' (known: linear, conv, maxpool, "
                                     "avgpool, flatten, dropout, batchnorm, layernorm, relu, gelu, "
                                     "tanh, sigmoid, silu, leakyrelu)", k + 1, nm);
            else if ((ok = check(l, k, 0, 0, "", err, errsz)))
                m = ACT[a].make();
        }
        if (ok && f.f > (1LL << 30))
            ok = say(err, errsz, "layer %d (%s) gives %lld values a sample, more than 2^30", k + 1,
                     nm, (long long)f.f);
        if (ok && !m) ok = say(err, errsz, "layer %d (%s): %s", k + 1, nm, ag_last_error());
        mods[k] = m;
    }
    if (ok && (f.image || f.f != classes))
        ok = say(err, errsz, "the last layer gives %lld outputs; the data have %lld classes (end with "
                             "`linear`, which then gets one output per class)",
                 (long long)f.f, (long long)classes);
    if (!ok) { /* ag_sequential_new would own them, also when it fails */
        for (int k = 0; k < n; k++) ag_module_free(mods[k]);
        return NULL;
    }
    ag_module *seq = ag_sequential_new(n, mods);
    if (!seq) say(err, errsz, "%s", ag_last_error());
    return seq;
}
