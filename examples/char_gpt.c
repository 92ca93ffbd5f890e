/* A character-level GPT trained end to end on a text corpus (by default the
 * plain-text files of Debian's fortunes package, sorted by name and
 * concatenated): byte vocabulary of the corpus and ag_gpt_new's model (learned
 * positions, causal pre-LN transformer blocks, a final LayerNorm and an untied
 * output layer without bias); AdamW with warm-up then cosine decay.
 * The first 90% of the text trains, the last 10% validates. bench/gpt_twin.py
 * is the same model and schedule in PyTorch. See --help. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "anygrad.h"

typedef struct opts {
    const char *text;
    int steps, batch, context, layers, heads, width, eval_every, eval_batches, sample;
    float lr, min_lr, max_val_loss;
    int warmup;
    uint64_t seed;
} opts;

typedef struct corpus {
    unsigned char *bytes;
    size_t n;
    int vocab;
    int stoi[256];
    unsigned char itos[256];
    int32_t *tok;
} corpus;

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static bool append_file(const char *path, corpus *c)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    bool ok = true;
    unsigned char buf[65536];
    size_t got;
    while (ok && (got = fread(buf, 1, sizeof buf, f)) > 0) {
        unsigned char *p = realloc(c->bytes, c->n + got);
        if (!p) ok = false;
        else {
            memcpy(p + c->n, buf, got);
            c->bytes = p;
            c->n += got;
        }
    }
    ok = ok && !ferror(f);
    fclose(f);
    return ok;
}

/* A file, or every regular file of a directory but *.dat and *.u8 (fortune's
 * index files and links), in name order. */
static bool load_text(const char *path, corpus *c)
{
    struct stat st;
    if (stat(path, &st) != 0) return false;
    if (!S_ISDIR(st.st_mode)) return append_file(path, c);
    DIR *d = opendir(path);
    if (!d) return false;
    char **names = NULL;
    size_t n = 0;
    bool ok = true;
    for (struct dirent *e; ok && (e = readdir(d));) {
        if (e->d_name[0] == '.' || ends_with(e->d_name, ".dat") || ends_with(e->d_name, ".u8")) continue;
        char **p = realloc(names, (n + 1) * sizeof *names);
        ok = p && (p[n] = strdup(e->d_name));
        if (p) names = p;
        if (ok) n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    char full[4096];
    for (size_t i = 0; ok && i < n; i++) {
        snprintf(full, sizeof full, "%s/%s", path, names[i]);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) ok = append_file(full, c);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    return ok;
}

static bool tokenize(corpus *c)
{
    bool seen[256] = {false};
    for (size_t i = 0; i < c->n; i++) seen[c->bytes[i]] = true;
    c->vocab = 0;
    for (int b = 0; b < 256; b++) {
        c->stoi[b] = seen[b] ? c->vocab : -1;
        if (seen[b]) c->itos[c->vocab++] = (unsigned char)b;
    }
    c->tok = malloc(c->n * sizeof *c->tok);
    if (!c->tok) return false;
    for (size_t i = 0; i < c->n; i++) c->tok[i] = c->stoi[c->bytes[i]];
    return true;
}

/* ---- the model ---------------------------------------------------------------- */

typedef struct gpt {
    ag_module *root; /* ag_gpt_new: wte, wpe, h (the blocks), ln_f, lm_head */
    int context;
} gpt;

static bool gpt_new(gpt *g, const opts *o, int vocab)
{
    g->root = ag_gpt_new(vocab, o->context, o->layers, o->heads, o->width, 0.0f);
    g->context = o->context;
    return g->root != NULL;
}

/* idx int32 [B, T] -> logits [B, T, V] */
static ag_tensor *gpt_forward(gpt *g, ag_tensor *idx, int T)
{
    (void)T;
    return ag_module_forward(g->root, idx);
}

/* ---- batches and loss ---------------------------------------------------------- */

/* B random windows of T + 1 tokens from tok[lo, hi): inputs and next-token targets. */
static bool batch(const corpus *c, size_t lo, size_t hi, int B, int T, ag_tensor **x, ag_tensor **y)
{
    int32_t *hx = malloc((size_t)B * T * sizeof *hx), *hy = malloc((size_t)B * T * sizeof *hy);
    float u[1024];
    ag_tensor *r = ag_rand(1, (int64_t[]){B}, 0.0f, 1.0f);
    bool ok = hx && hy && r && B <= 1024 && ag_to_host(r, u, (size_t)B * sizeof *u) == AG_OK;
    for (int b = 0; ok && b < B; b++) {
        size_t off = lo + (size_t)(u[b] * (double)(hi - lo - (size_t)T - 1));
        for (int t = 0; t < T; t++) {
            hx[b * T + t] = c->tok[off + t];
            hy[b * T + t] = c->tok[off + t + 1];
        }
    }
    *x = ok ? ag_from_i32(hx, 2, (int64_t[]){B, T}) : NULL;
    *y = ok ? ag_from_i32(hy, 1, (int64_t[]){(int64_t)B * T}) : NULL;
    free(hx);
    free(hy);
    return *x && *y;
}

static ag_tensor *loss_of(gpt *g, ag_tensor *x, ag_tensor *y, int B, int T, int V)
{
    ag_tensor *logits = gpt_forward(g, x, T);
    return ag_cross_entropy(ag_reshape(logits, 2, (int64_t[]){(int64_t)B * T, V}), y, AG_REDUCTION_MEAN, 0.0f);
}

/* Mean loss over n random batches of [lo, hi), without gradients. */
static bool eval_loss(gpt *g, const corpus *c, size_t lo, size_t hi, const opts *o, int n, double *out)
{
    double sum = 0;
    ag_no_grad_begin();
    bool ok = true;
    for (int i = 0; ok && i < n; i++) {
        ag_scope_begin();
        ag_tensor *x, *y;
        float l = 0;
        ok = batch(c, lo, hi, o->batch, o->context, &x, &y) &&
             ag_item(loss_of(g, x, y, o->batch, o->context, c->vocab), &l) == AG_OK;
        sum += l;
        ag_scope_end();
    }
    ag_no_grad_end();
    *out = sum / n;
    return ok;
}

/* ---- sampling -------------------------------------------------------------------- */

static bool sample(gpt *g, const corpus *c, const opts *o, int ntok, float temperature, int top_k)
{
    int32_t ctx[1024] = {0};
    int len = 1;
    ctx[0] = c->stoi['\n'] >= 0 ? c->stoi['\n'] : 0;
    float *p = malloc((size_t)c->vocab * sizeof *p);
    bool ok = p != NULL;
    ag_no_grad_begin();
    for (int i = 0; ok && i < ntok; i++) {
        ag_scope_begin();
        int T = len < o->context ? len : o->context;
        ag_tensor *x = ag_from_i32(ctx + len - T, 2, (int64_t[]){1, T});
        ag_tensor *logits = x ? gpt_forward(g, x, T) : NULL;
        ag_tensor *last = logits ? ag_slice(logits, 1, T - 1, T, 1) : NULL;
        float u = 0;
        ag_tensor *r = ag_rand(1, (int64_t[]){1}, 0.0f, 1.0f);
        ok = last && r && ag_to_host(ag_contiguous(last), p, (size_t)c->vocab * sizeof *p) == AG_OK &&
             ag_to_host(r, &u, sizeof u) == AG_OK;
        ag_scope_end();
        if (!ok) break;
        /* top-k, temperature, softmax, then the inverse CDF at u */
        float kth = -INFINITY, mx = -INFINITY;
        if (top_k > 0 && top_k < c->vocab) {
            float *s = malloc((size_t)c->vocab * sizeof *s);
            if (!s) { ok = false; break; }
            memcpy(s, p, (size_t)c->vocab * sizeof *s);
            for (int k = 0; k < top_k; k++) { /* partial selection: the k-th largest */
                int best = k;
                for (int j = k + 1; j < c->vocab; j++)
                    if (s[j] > s[best]) best = j;
                float t = s[k]; s[k] = s[best]; s[best] = t;
            }
            kth = s[top_k - 1];
            free(s);
        }
        for (int j = 0; j < c->vocab; j++) mx = p[j] > mx ? p[j] : mx;
        double sum = 0;
        for (int j = 0; j < c->vocab; j++) sum += p[j] >= kth ? exp((p[j] - mx) / temperature) : 0.0;
        double acc = 0;
        int pick = c->vocab - 1;
        for (int j = 0; j < c->vocab; j++) {
            acc += p[j] >= kth ? exp((p[j] - mx) / temperature) / sum : 0.0;
            if (u < acc) { pick = j; break; }
        }
        if (len == 1024) { memmove(ctx, ctx + 1, 1023 * sizeof *ctx); len--; }
        ctx[len++] = pick;
        putchar(c->itos[pick]);
    }
    ag_no_grad_end();
    putchar('\n');
    free(p);
    return ok;
}

/* ---- main ------------------------------------------------------------------------- */

static int usage(FILE *f)
{
    fprintf(f, "usage: char_gpt [--text FILE_OR_DIR] [--steps N] [--batch N] [--context N]\n"
               "                [--layers N] [--heads N] [--width N] [--lr F] [--min-lr F] [--warmup N]\n"
               "                [--eval-every N] [--eval-batches N] [--sample N] [--seed N]\n"
               "                [--max-val-loss F]\n"
               "Defaults: the fortunes corpus, 2000 steps of batch 12 x context 64, 4 blocks of 4\n"
               "heads and width 128, AdamW lr 1e-3 (betas 0.9, 0.99, weight decay 0.1), 100 warm-up\n"
               "steps then cosine to 1e-4, validation (50 batches) every 250 steps, 300 sampled\n"
               "characters at the end. --max-val-loss: exit 1 when the last validation loss is higher.\n");
    return f == stdout ? 0 : 2;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    opts o = {.text = "/usr/share/games/fortunes", .steps = 2000, .batch = 12, .context = 64,
              .layers = 4, .heads = 4, .width = 128, .eval_every = 250, .eval_batches = 50,
              .sample = 300, .lr = 1e-3f, .min_lr = 1e-4f, .max_val_loss = INFINITY, .warmup = 100,
              .seed = 1337};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout);
        if (!v) return usage(stderr);
        i++;
        if (!strcmp(a, "--text")) o.text = v;
        else if (!strcmp(a, "--steps")) o.steps = atoi(v);
        else if (!strcmp(a, "--batch")) o.batch = atoi(v);
        else if (!strcmp(a, "--context")) o.context = atoi(v);
        else if (!strcmp(a, "--layers")) o.layers = atoi(v);
        else if (!strcmp(a, "--heads")) o.heads = atoi(v);
        else if (!strcmp(a, "--width")) o.width = atoi(v);
        else if (!strcmp(a, "--lr")) o.lr = strtof(v, NULL);
        else if (!strcmp(a, "--min-lr")) o.min_lr = strtof(v, NULL);
        else if (!strcmp(a, "--warmup")) o.warmup = atoi(v);
        else if (!strcmp(a, "--eval-every")) o.eval_every = atoi(v);
        else if (!strcmp(a, "--eval-batches")) o.eval_batches = atoi(v);
        else if (!strcmp(a, "--sample")) o.sample = atoi(v);
        else if (!strcmp(a, "--seed")) o.seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--max-val-loss")) o.max_val_loss = strtof(v, NULL);
        else return usage(stderr);
    }
    if (o.steps < 1 || o.batch < 1 || o.batch > 1024 || o.context < 2 || o.context > 1024 || o.layers < 1 ||
        o.heads < 1 || o.width < 1 || o.width % o.heads || o.eval_every < 1 || o.eval_batches < 1 ||
        o.sample < 0 || !(o.lr > 0) || o.warmup < 0) {
        fprintf(stderr, "char_gpt: a size or rate is out of range (width must divide by heads)\n");
        return 2;
    }
    corpus c = {0};
    if (!load_text(o.text, &c) || !tokenize(&c)) {
        fprintf(stderr, "char_gpt: cannot read %s (apt-get install fortunes, or --text FILE)\n", o.text);
        return 1;
    }
    size_t split = c.n / 10 * 9;
    if (split < (size_t)o.context + 2 || c.n - split < (size_t)o.context + 2) {
        fprintf(stderr, "char_gpt: %s is too short for context %d\n", o.text, o.context);
        return 1;
    }
    ag_manual_seed(o.seed);
    gpt g = {0};
    ag_optim *opt = NULL;
    int rc = 1;
    if (!gpt_new(&g, &o, c.vocab)) goto out;
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(g.root, &np);
    ag_optim_config cfg = ag_optim_defaults(AG_OPTIM_ADAMW, o.lr);
    cfg.beta2 = 0.99f;
    cfg.weight_decay = 0.1f;
    if (!params || !(opt = ag_optim_new(&cfg, np, params))) goto out;
    printf("char_gpt on %s: %zu bytes (%zu train), vocabulary %d, %lld parameters\n",
           ag_device_name(ag_device_default()), c.n, split, c.vocab,
           (long long)ag_module_num_parameters(g.root));
    double *times = malloc((size_t)o.steps * sizeof *times), val = NAN, tr = NAN;
    if (!times) goto out;
    for (int step = 0; step < o.steps; step++) {
        float lr = step < o.warmup ? ag_lr_warmup(o.lr, step, o.warmup)
                                   : ag_lr_cosine(o.lr, step - o.warmup, o.steps - o.warmup, o.min_lr);
        double t0 = now_s();
        ag_scope_begin();
        ag_tensor *x, *y;
        float l = NAN;
        bool ok = batch(&c, 0, split, o.batch, o.context, &x, &y);
        ag_tensor *loss = ok ? loss_of(&g, x, y, o.batch, o.context, c.vocab) : NULL;
        ok = loss && ag_optim_zero_grad(opt) == AG_OK && ag_backward(loss, NULL) == AG_OK &&
             ag_optim_set_lr(opt, lr) == AG_OK && ag_optim_step(opt) == AG_OK && ag_item(loss, &l) == AG_OK;
        ag_scope_end();
        times[step] = now_s() - t0;
        if (!ok || !isfinite(l)) {
            fprintf(stderr, "char_gpt: step %d failed: %s\n", step, ok ? "the loss is not finite" : ag_last_error());
            free(times);
            goto out;
        }
        if (step == o.steps - 1 || (step + 1) % o.eval_every == 0) {
            if (!eval_loss(&g, &c, 0, split, &o, o.eval_batches, &tr) ||
                !eval_loss(&g, &c, split, c.n, &o, o.eval_batches, &val)) {
                fprintf(stderr, "char_gpt: evaluation failed: %s\n", ag_last_error());
                free(times);
                goto out;
            }
            int from = step > 10 ? 10 : 0, k = step + 1 - from;
            double *s = malloc((size_t)k * sizeof *s), med = 0;
            if (s) {
                memcpy(s, times + from, (size_t)k * sizeof *s);
                qsort(s, (size_t)k, sizeof *s, cmp_double);
                med = s[k / 2];
                free(s);
            }
            printf("step %5d  lr %.2e  train loss %.4f  val loss %.4f  %.1f ms/step (median)\n", step + 1,
                   (double)lr, tr, val, 1e3 * med);
            fflush(stdout);
        }
    }
    free(times);
    if (o.sample > 0) {
        printf("--- %d sampled characters (temperature 0.8, top-k 40) ---\n", o.sample);
        if (!sample(&g, &c, &o, o.sample, 0.8f, 40)) goto out;
    }
    rc = val <= o.max_val_loss ? 0 : 1;
    if (rc) fprintf(stderr, "char_gpt: validation loss %.4f is above --max-val-loss %.4f\n", val, (double)o.max_val_loss);
out:
    if (rc && ag_last_status() != AG_OK) fprintf(stderr, "char_gpt: %s\n", ag_last_error());
    ag_optim_free(opt);
    ag_module_free(g.root);
    free(c.bytes);
    free(c.tok);
    return rc;
}
