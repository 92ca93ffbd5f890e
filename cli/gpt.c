/* anygrad train --model gpt and anygrad sample: a character-level GPT
 * (ag_gpt_new) trained on a text corpus, and text generated from its
 * checkpoints. The vocabulary is the bytes of the training text; checkpoints
 * record it (anygrad.vocab, hexadecimal) with the model's sizes, so sample and
 * --resume need nothing else. Batches are random windows drawn from the
 * library's generator, reseeded every step, so a resumed run goes on exactly. */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* strdup, dirent */
#endif
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anygrad.h"
#include "cli.h"
#include "train.h"

/* ---- the corpus ---------------------------------------------------------------- */

typedef struct corpus {
    unsigned char *bytes;
    size_t n, cap;
    int vocab;
    int stoi[256];            /* byte -> token, -1 when not in the vocabulary */
    unsigned char itos[256];
    int32_t *tok;
} corpus;

static void corpus_free(corpus *c)
{
    free(c->bytes);
    free(c->tok);
    memset(c, 0, sizeof *c);
}

static bool append_file(const char *path, corpus *c, char *err, size_t errsz)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return false;
    }
    bool ok = true;
    for (;;) {
        if (c->cap - c->n < 65536) {
            size_t cap = c->cap ? 2 * c->cap : 1 << 20;
            unsigned char *p = realloc(c->bytes, cap);
            if (!p) {
                snprintf(err, errsz, "%s: out of memory", path);
                ok = false;
                break;
            }
            c->bytes = p;
            c->cap = cap;
        }
        size_t got = fread(c->bytes + c->n, 1, c->cap - c->n, f);
        c->n += got;
        if (got == 0) break;
    }
    if (ok && ferror(f)) snprintf(err, errsz, "%s: %s", path, strerror(errno)), ok = false;
    fclose(f);
    return ok;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A file, or the regular files of a directory in name order, leaving out
 * hidden ones and fortune's index files and links (*.dat, *.u8). */
static bool read_text(const char *path, corpus *c, char *err, size_t errsz)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, errsz, "--text %s: %s%s", path, strerror(errno),
                 strcmp(path, "/usr/share/games/fortunes") ? ""
                                                           : " (Debian's fortunes package: make deps)");
        return false;
    }
    if (!S_ISDIR(st.st_mode)) return append_file(path, c, err, errsz);
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, errsz, "--text %s: %s", path, strerror(errno));
        return false;
    }
    char **names = NULL;
    size_t n = 0;
    bool ok = true;
    for (struct dirent *e; ok && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.' || (len > 4 && !strcmp(e->d_name + len - 4, ".dat")) ||
            (len > 3 && !strcmp(e->d_name + len - 3, ".u8")))
            continue;
        char **p = realloc(names, (n + 1) * sizeof *names);
        ok = p && (p[n] = strdup(e->d_name));
        if (p) names = p;
        if (ok) n++;
    }
    closedir(d);
    if (!ok) snprintf(err, errsz, "--text %s: out of memory", path);
    if (n) qsort(names, n, sizeof *names, by_name);
    char full[4096];
    for (size_t i = 0; ok && i < n; i++) {
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) ok = append_file(full, c, err, errsz);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return ok;
}

static void vocab_of_bytes(corpus *c)
{
    bool seen[256] = {false};
    for (size_t i = 0; i < c->n; i++) seen[c->bytes[i]] = true;
    c->vocab = 0;
    for (int b = 0; b < 256; b++) {
        c->stoi[b] = seen[b] ? c->vocab : -1;
        if (seen[b]) c->itos[c->vocab++] = (unsigned char)b;
    }
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                                             : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* "0a2021...": the vocabulary's bytes in token order */
static bool vocab_of_hex(const char *hex, corpus *c)
{
    size_t len = hex ? strlen(hex) : 0;
    if (len < 2 || len > 512 || len % 2) return false;
    for (int b = 0; b < 256; b++) c->stoi[b] = -1;
    c->vocab = 0;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
        if (hi < 0 || lo < 0) return false;
        unsigned v = (unsigned)(hi * 16 + lo);
        if (c->stoi[v] >= 0) return false;
        c->stoi[v] = c->vocab;
        c->itos[c->vocab++] = (unsigned char)v;
    }
    return true;
}

static void vocab_hex(const corpus *c, char *out)
{
    for (int i = 0; i < c->vocab; i++) sprintf(out + 2 * i, "%02x", c->itos[i]);
    out[2 * c->vocab] = '\0';
}

static bool tokenize(corpus *c, char *err, size_t errsz)
{
    c->tok = malloc((c->n ? c->n : 1) * sizeof *c->tok);
    if (!c->tok) {
        snprintf(err, errsz, "out of memory for %zu tokens", c->n);
        return false;
    }
    for (size_t i = 0; i < c->n; i++) {
        c->tok[i] = c->stoi[c->bytes[i]];
        if (c->tok[i] < 0) {
            snprintf(err, errsz, "the text's byte 0x%02x (at offset %zu) is not in the checkpoint's "
                                 "vocabulary of %d", c->bytes[i], i, c->vocab);
            return false;
        }
    }
    return true;
}

/* ---- batches, loss, generation -------------------------------------------------- */

/* B random windows of T + 1 tokens of tok[lo, hi): inputs and next-token targets. */
static bool batch(const corpus *c, size_t lo, size_t hi, int64_t B, int64_t T, ag_tensor **x,
                  ag_tensor **y)
{
    *x = *y = NULL;
    int32_t *hx = malloc((size_t)(B * T) * sizeof *hx), *hy = malloc((size_t)(B * T) * sizeof *hy);
    float *u = malloc((size_t)B * sizeof *u);
    ag_tensor *r = ag_rand(1, (int64_t[]){B}, 0.0f, 1.0f);
    bool ok = hx && hy && u && r && ag_to_host(r, u, (size_t)B * sizeof *u) == AG_OK;
    for (int64_t b = 0; ok && b < B; b++) {
        size_t off = lo + (size_t)(u[b] * (double)(hi - lo - (size_t)T - 1));
        for (int64_t t = 0; t < T; t++) {
            hx[b * T + t] = c->tok[off + (size_t)t];
            hy[b * T + t] = c->tok[off + (size_t)t + 1];
        }
    }
    if (ok) {
        *x = ag_from_i32(hx, 2, (int64_t[]){B, T});
        *y = ag_from_i32(hy, 1, (int64_t[]){B * T});
    }
    free(hx);
    free(hy);
    free(u);
    return *x && *y;
}

static ag_tensor *loss_of(ag_module *m, ag_tensor *x, ag_tensor *y, int64_t V)
{
    ag_tensor *logits = ag_module_forward(m, x);
    return ag_cross_entropy(ag_reshape(logits, 2, (int64_t[]){ag_numel(y), V}), y, AG_REDUCTION_MEAN, 0.0f);
}

/* Mean loss of n random batches of [lo, hi), the same batches every time. */
static bool estimate(ag_module *m, const corpus *c, size_t lo, size_t hi, const cli_train_opts *o,
                     double *out)
{
    double sum = 0.0;
    bool ok = true;
    ag_manual_seed((uint64_t)o->seed ^ 0xe5717a7e5ULL);
    ag_module_train(m, false);
    ag_no_grad_begin();
    for (int64_t i = 0; ok && i < o->eval_batches; i++) {
        ag_scope_begin();
        ag_tensor *x, *y;
        float l = 0.0f;
        ok = batch(c, lo, hi, o->batch, o->context, &x, &y) &&
             ag_item(loss_of(m, x, y, c->vocab), &l) == AG_OK;
        sum += l;
        ag_scope_end();
    }
    ag_no_grad_end();
    ag_module_train(m, true);
    *out = sum / (double)o->eval_batches;
    return ok;
}

typedef struct ranked {
    float logit;
    int token;
} ranked;

static int by_logit(const void *a, const void *b)
{
    float x = ((const ranked *)a)->logit, y = ((const ranked *)b)->logit;
    return x < y ? 1 : x > y ? -1 : ((const ranked *)a)->token - ((const ranked *)b)->token;
}

/* Appends ntok tokens to ctx (len tokens, room for len + ntok), printing each:
 * the last position's logits / temperature, softmax over the top_k (0: all),
 * drawn by inverse CDF with a uniform draw of the library's generator. */
static bool generate(ag_module *m, const corpus *voc, int64_t context, int32_t *ctx, int64_t len,
                     int64_t ntok, double temperature, int64_t top_k, FILE *out)
{
    const int V = voc->vocab;
    ranked *r = malloc((size_t)V * sizeof *r);
    float *p = malloc((size_t)V * sizeof *p);
    bool ok = r && p;
    ag_module_train(m, false);
    ag_no_grad_begin();
    for (int64_t i = 0; ok && i < ntok; i++) {
        ag_scope_begin();
        int64_t T = len < context ? len : context;
        ag_tensor *logits = ag_module_forward(m, ag_from_i32(ctx + len - T, 2, (int64_t[]){1, T}));
        ag_tensor *last = logits ? ag_contiguous(ag_slice(logits, 1, T - 1, T, 1)) : NULL;
        ag_tensor *draw = ag_rand(1, (int64_t[]){1}, 0.0f, 1.0f);
        float u = 0.0f;
        ok = last && draw && ag_to_host(last, p, (size_t)V * sizeof *p) == AG_OK &&
             ag_to_host(draw, &u, sizeof u) == AG_OK;
        ag_scope_end();
        if (!ok) break;
        for (int j = 0; j < V; j++) r[j] = (ranked){p[j], j};
        qsort(r, (size_t)V, sizeof *r, by_logit);
        int k = top_k > 0 && top_k < V ? (int)top_k : V;
        double sum = 0.0, acc = 0.0;
        for (int j = 0; j < k; j++) sum += exp(((double)r[j].logit - r[0].logit) / temperature);
        int pick = r[k - 1].token;
        for (int j = 0; j < k; j++) {
            acc += exp(((double)r[j].logit - r[0].logit) / temperature) / sum;
            if ((double)u < acc) {
                pick = r[j].token;
                break;
            }
        }
        ctx[len++] = pick;
        fputc(voc->itos[pick], out);
    }
    ag_no_grad_end();
    fflush(out);
    free(r);
    free(p);
    return ok;
}

/* ---- anygrad train --model gpt ------------------------------------------------------ */

static uint64_t step_seed(uint64_t seed, int64_t step)
{
    return (seed ^ 0x27d4eb2f165667c5ULL) + 0x9e3779b97f4a7c15ULL * (uint64_t)(step + 1);
}

static float gpt_lr(const cli_train_opts *o, int64_t step)
{
    float lr = (float)o->lr;
    if (!strcmp(o->schedule, "cosine")) {
        int64_t span = o->steps - o->warmup;
        lr = ag_lr_cosine((float)o->lr, step - o->warmup < 0 ? 0 : step - o->warmup, span > 0 ? span : 1,
                          (float)o->min_lr);
    } else if (!strcmp(o->schedule, "step")) {
        int64_t every = o->step_size > 0 ? o->step_size : (o->steps + 2) / 3;
        lr = ag_lr_step_decay(lr, step, every > 0 ? every : 1, (float)o->gamma);
    }
    return ag_lr_warmup(lr, step, o->warmup);
}

static int gpt_fail(const char *what)
{
    fprintf(stderr, "anygrad train: %s: %s\n", what, ag_last_error());
    return 1;
}

typedef struct gpt_run {
    const cli_train_opts *o;
    corpus c;
    size_t split;            /* tokens [0, split) train, [split, n) validate */
    ag_module *m;
    ag_optim *opt;
    cli_metrics log;
    char vocab[513];
} gpt_run;

/* The checkpoint (with --save), the log and the plot. */
static bool gpt_save(gpt_run *g)
{
    const cli_train_opts *o = g->o;
    const char *extra[2] = {"vocab", g->vocab};
    if (o->save && tr_save_checkpoint(o, g->m, g->opt, 0, 0, NULL, NULL, o->steps, 0, 0.0f, 1, extra) != AG_OK) {
        gpt_fail("saving the checkpoint");
        return false;
    }
    char err[512], title[256];
    snprintf(title, sizeof title, "anygrad train --model gpt: %lld blocks, width %lld, context %lld",
             (long long)o->blocks, (long long)o->width, (long long)o->context);
    if ((o->log && !cli_metrics_write_csv(&g->log, o->log, err, sizeof err)) ||
        (o->plot && !cli_plot_svg(&g->log, o->plot, title, err, sizeof err))) {
        fprintf(stderr, "anygrad train: %s\n", err);
        return false;
    }
    return true;
}

static int gpt_loop(gpt_run *g)
{
    const cli_train_opts *o = g->o;
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(g->m, &np);
    const size_t n = g->c.n;
    const double epoch_tokens = (double)g->split;
    int64_t step = ag_optim_steps(g->opt);
    printf("anygrad train: gpt (%lld blocks, %lld heads, width %lld, context %lld, vocabulary %d), "
           "%lld parameters, device %s\n", (long long)o->blocks, (long long)o->heads,
           (long long)o->width, (long long)o->context, g->c.vocab,
           (long long)ag_module_num_parameters(g->m), ag_device_name(ag_device_default()));
    printf("  %zu characters of text: %zu train, %zu validate; batch %lld; %s lr %g, %s schedule, "
           "%lld steps%s\n", n, g->split, n - g->split, (long long)o->batch, o->optimizer, o->lr,
           o->schedule, (long long)o->steps, step ? " (resumed)" : "");
    fflush(stdout);
    cli_progress bar;
    cli_progress_begin(&bar, "steps", o->steps);
    double t0 = cli_now(), isum = 0.0, last_val = NAN, eval_s = 0.0; /* ms/step leaves evaluation out */
    int64_t iseen = 0, since = step;
    bool stopped = false;
    while (step < o->steps) {
        float lr = gpt_lr(o, step), lv = 0.0f, norm;
        ag_manual_seed(step_seed((uint64_t)o->seed, step));
        ag_scope_begin();
        ag_tensor *x, *y;
        bool ok = batch(&g->c, 0, g->split, o->batch, o->context, &x, &y) &&
                  ag_optim_zero_grad(g->opt) == AG_OK;
        ag_tensor *loss = ok ? loss_of(g->m, x, y, g->c.vocab) : NULL;
        ok = loss && ag_backward(loss, NULL) == AG_OK && ag_item(loss, &lv) == AG_OK &&
             (o->clip <= 0.0 || ag_clip_grad_norm(np, params, (float)o->clip, &norm) == AG_OK) &&
             ag_optim_set_lr(g->opt, lr) == AG_OK && ag_optim_step(g->opt) == AG_OK;
        ag_scope_end();
        if (!ok || !isfinite(lv)) {
            cli_progress_end(&bar);
            if (ok) fprintf(stderr, "anygrad train: the loss became %g at step %lld; try a smaller --lr "
                                    "or --clip\n", (double)lv, (long long)step + 1);
            return ok ? 1 : gpt_fail("training");
        }
        step++;
        isum += lv;
        iseen++;
        stopped = tr_interrupted();
        cli_progress_update(&bar, step, step * o->batch, isum / (double)iseen, NAN);
        bool eval = step == o->steps || stopped || (o->eval_every > 0 && step % o->eval_every == 0);
        bool row = eval || (o->log_every > 0 && step % o->log_every == 0);
        double val = NAN, te = cli_now();
        if (eval && !estimate(g->m, &g->c, g->split, n, o, &val)) {
            cli_progress_end(&bar);
            return gpt_fail("validation");
        }
        eval_s += cli_now() - te;
        if (row) {
            cli_metric_row r = {.epoch = (double)step * (double)(o->batch * o->context) / epoch_tokens,
                                .step = step, .loss = isum / (double)iseen, .train_acc = NAN,
                                .val_acc = NAN, .test_acc = NAN, .val_loss = val, .test_loss = NAN,
                                .lr = lr, .seconds = cli_now() - t0 - eval_s};
            if (!cli_metrics_push(&g->log, &r)) {
                cli_progress_end(&bar);
                fprintf(stderr, "anygrad train: out of memory for the metrics log\n");
                return 1;
            }
        }
        if (eval) {
            cli_progress_end(&bar);
            double ms = 1e3 * (cli_now() - t0 - eval_s) / (double)(step - since);
            printf("step %lld/%lld  loss %.4f  val loss %.4f  lr %.3g  %.1f ms/step\n", (long long)step,
                   (long long)o->steps, isum / (double)iseen, val, (double)lr, ms);
            fflush(stdout);
            last_val = val;
            if (!gpt_save(g)) return 1;
            if (stopped) {
                printf("interrupted after step %lld%s%s%s\n", (long long)step,
                       o->save ? ": saved to " : " (no --save: not saved)", o->save ? o->save : "",
                       o->save ? " (--resume goes on from there)" : "");
                return 130;
            }
        }
        if (row) isum = 0.0, iseen = 0;
    }
    cli_progress_end(&bar);
    printf("summary: gpt, %lld steps; validation loss %.4f; peak memory %.0f MB\n", (long long)o->steps, last_val,
           cli_peak_mb());
    if (o->save) printf("checkpoint: %s (anygrad sample %s writes text)\n", o->save, o->save);
    if (o->log) printf("log: %s\n", o->log);
    if (o->plot) printf("plot: %s\n", o->plot);
    return 0;
}

int cli_gpt_train(const cli_train_opts *o, const ag_tensor_dict *ck)
{
    if (cli_dist_on()) {
        fprintf(stderr, "anygrad train: --model gpt does not train under mpirun yet\n");
        return 2;
    }
    gpt_run g;
    memset(&g, 0, sizeof g);
    g.o = o;
    char err[512] = "";
    int rc = 1;
    if (!read_text(o->text, &g.c, err, sizeof err)) {
        fprintf(stderr, "anygrad train: %s\n", err);
        corpus_free(&g.c);
        return 1;
    }
    if (ck) {
        if (!vocab_of_hex(ag_tensor_dict_meta(ck, META "vocab"), &g.c)) {
            fprintf(stderr, "anygrad train: --resume %s: no valid vocabulary (anygrad.vocab)\n", o->resume);
            corpus_free(&g.c);
            return 1;
        }
    } else {
        vocab_of_bytes(&g.c);
    }
    vocab_hex(&g.c, g.vocab);
    g.split = g.c.n - g.c.n / 10;
    size_t need = (size_t)o->context + 2;
    if (!tokenize(&g.c, err, sizeof err)) {
        fprintf(stderr, "anygrad train: %s: %s\n", o->text, err);
    } else if (g.split < need || g.c.n - g.split < need) {
        fprintf(stderr, "anygrad train: %s: %zu characters; 90%% to train and 10%% to validate need "
                        "--context + 2 (%zu) each\n", o->text, g.c.n, need);
        rc = 2;
    } else {
        ag_manual_seed((uint64_t)o->seed);
        g.m = ag_gpt_new(g.c.vocab, o->context, o->blocks, o->heads, o->width, 0.0f);
        int np = 0;
        ag_tensor *const *params = g.m ? ag_module_parameters(g.m, &np) : NULL;
        const cli_optim_spec *os = cli_find_optim(o->optimizer);
        ag_optim_config c = ag_optim_defaults(os->kind, (float)o->lr);
        c.weight_decay = (float)o->weight_decay;
        c.momentum = (float)o->momentum;
        if (os->kind == AG_OPTIM_ADAM || os->kind == AG_OPTIM_ADAMW)
            c.beta2 = 0.99f; /* nanoGPT's choice for small models and batches */
        g.opt = params ? ag_optim_new(&c, np, params) : NULL;
        if (!g.opt) {
            rc = gpt_fail("the model");
        } else if (ck && ag_checkpoint_load(o->resume, g.m, g.opt, NULL) != AG_OK) {
            rc = gpt_fail("resuming");
        } else if (ck && ag_optim_steps(g.opt) >= o->steps) {
            printf("the checkpoint is at step %lld already (--steps %lld): nothing to train\n",
                   (long long)ag_optim_steps(g.opt), (long long)o->steps);
            rc = 0;
        } else {
            cli_metrics old;
            if (ck && o->log && cli_metrics_read_csv(o->log, &old, err, sizeof err)) {
                for (int i = 0; i < old.n; i++)
                    if (old.rows[i].step <= ag_optim_steps(g.opt)) cli_metrics_push(&g.log, &old.rows[i]);
                cli_metrics_free(&old);
            }
            tr_catch_interrupt(true);
            rc = gpt_loop(&g);
            tr_catch_interrupt(false);
        }
    }
    ag_optim_free(g.opt);
    ag_module_free(g.m);
    cli_metrics_free(&g.log);
    corpus_free(&g.c);
    return rc;
}

/* ---- anygrad sample -------------------------------------------------------------- */

static bool meta_int(const ag_tensor_dict *d, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    const char *v = ag_tensor_dict_meta(d, key);
    char *end = NULL;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || *end || x < lo || x > hi) return false;
    *out = x;
    return true;
}

int cli_sample(const cli_sample_opts *o)
{
    if (!cli_use_device("sample", o->device)) return 2;
    ag_tensor_dict *d = ag_safetensors_load(o->file);
    if (!d) {
        fprintf(stderr, "anygrad sample: %s\n", ag_last_error());
        return 1;
    }
    corpus voc;
    memset(&voc, 0, sizeof voc);
    int64_t ctx = 0, blocks = 0, heads = 0, width = 0;
    const char *model = ag_tensor_dict_meta(d, META "model");
    int rc = 1;
    ag_module *m = NULL;
    int32_t *tok = NULL;
    if (!model || strcmp(model, "gpt") || !vocab_of_hex(ag_tensor_dict_meta(d, META "vocab"), &voc) ||
        !meta_int(d, META "context", 1, 65536, &ctx) || !meta_int(d, META "blocks", 1, 256, &blocks) ||
        !meta_int(d, META "heads", 1, 1024, &heads) || !meta_int(d, META "width", 1, 65536, &width)) {
        fprintf(stderr, "anygrad sample: %s: not a checkpoint of anygrad train --model gpt (it records "
                        "the model, its sizes and vocabulary)\n", o->file);
        rc = 2;
        goto out;
    }
    m = ag_gpt_new(voc.vocab, ctx, blocks, heads, width, 0.0f);
    if (!m || ag_module_load(m, o->file) != AG_OK) {
        fprintf(stderr, "anygrad sample: %s: %s\n", o->file, ag_last_error());
        goto out;
    }
    size_t plen = strlen(o->prompt);
    tok = malloc((plen + (size_t)o->tokens + 1) * sizeof *tok);
    if (!tok || plen == 0) {
        fprintf(stderr, "anygrad sample: %s\n", tok ? "--prompt is empty" : "out of memory");
        if (tok) rc = 2;
        goto out;
    }
    for (size_t i = 0; i < plen; i++) {
        unsigned char ch = (unsigned char)o->prompt[i];
        if ((tok[i] = voc.stoi[ch]) < 0) {
            fprintf(stderr, "anygrad sample: the prompt's character %zu (byte 0x%02x) is not in the "
                            "model's vocabulary of %d\n", i + 1, ch, voc.vocab);
            rc = 2;
            goto out;
        }
    }
    fputs(o->prompt, stdout);
    ag_manual_seed((uint64_t)o->seed);
    if (!generate(m, &voc, ctx, tok, (int64_t)plen, o->tokens, o->temperature, o->top_k, stdout)) {
        fprintf(stderr, "\nanygrad sample: %s\n", ag_last_error());
        goto out;
    }
    putchar('\n');
    rc = fflush(stdout) == 0 ? 0 : 1;
out:
    free(tok);
    ag_module_free(m);
    ag_tensor_dict_free(d);
    return rc;
}
