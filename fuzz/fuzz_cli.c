/* The command line of the anygrad tool: cli_parse (cli/args.h) on argv made
 * from the input, then for `train` the resolution of defaults, with a resumed
 * checkpoint's settings when the input gives some.
 *
 * Input: words separated by NUL bytes, the tool's arguments after argv[0]. A
 * word "\x1e" ends them; every word after it is a checkpoint setting K=V, stored
 * as metadata "anygrad.K" of a checkpoint that cli_train_resolve reads.
 *
 * Checked: parsing leaves argv alone and gives the same result twice; an error
 * says why; parsed options satisfy their ranges; resolved options are complete,
 * known and in range, or resolving fails with a message. */
#include "fuzz_common.h"

#include "args.h"

#define MAX_WORDS 64

typedef struct words {
    int n;
    char *w[MAX_WORDS];
} words;

/* The range check the parser promises for every set option. */
static void check_option(const cli_train_opts *t, int i)
{
    const cli_optdef *o = &CLI_TRAIN_OPTS[i];
    const void *at = (const char *)t + o->off;
    if (o->type == CLI_STR) {
        const char *s = *(const char *const *)at;
        if (!s || !*s) {
            fprintf(stderr, "--%s set to %s\n", o->flag, s ? "an empty string" : "NULL");
            abort();
        }
        return;
    }
    double v = o->type == CLI_INT ? (double)*(const int64_t *)at : *(const double *)at;
    if (!(v >= o->lo && v <= o->hi)) {
        fprintf(stderr, "--%s = %g outside [%g, %g]\n", o->flag, v, o->lo, o->hi);
        abort();
    }
}

static void check_resolved(const cli_train_opts *t, const bool *set)
{
    for (int i = 0; i < CLI_NTRAIN_OPTS; i++) {
        /* a default exists for these, so resolution must have set them */
        const char *f = CLI_TRAIN_OPTS[i].flag;
        static const char *const gpt_needs[] = {"steps", "context", "blocks", "heads", "width",
                                                "eval-batches", "text"};
        bool gpt = !strcmp(t->model, "gpt"), needed = CLI_TRAIN_OPTS[i].def || !strcmp(f, "batch") ||
                   (!gpt && !strcmp(f, "epochs")) || !strcmp(f, "lr") || !strcmp(f, "momentum") ||
                   !strcmp(f, "weight-decay");
        for (size_t k = 0; gpt && k < sizeof gpt_needs / sizeof *gpt_needs; k++) needed |= !strcmp(f, gpt_needs[k]);
        if (needed && !set[i]) {
            fprintf(stderr, "--%s left unset after resolving\n", f);
            abort();
        }
        if (set[i]) check_option(t, i);
    }
    const cli_optim_spec *os = cli_find_optim(t->optimizer);
    if (!cli_find_model(t->model) || !os || cli_find_schedule(t->schedule) < 0) abort();
    if (t->momentum > 0 && os->kind != AG_OPTIM_SGD && os->kind != AG_OPTIM_RMSPROP) abort();
}

/* A checkpoint dictionary holding only metadata "anygrad.K" = V per "K=V" word. */
static ag_tensor_dict *settings(const words *m)
{
    ag_tensor_dict *d = calloc(1, sizeof *d);
    if (!d) abort();
    d->meta_keys = calloc((size_t)m->n + 1, sizeof *d->meta_keys);
    d->meta_values = calloc((size_t)m->n + 1, sizeof *d->meta_values);
    if (!d->meta_keys || !d->meta_values) abort();
    for (int i = 0; i < m->n; i++) {
        const char *eq = strchr(m->w[i], '=');
        if (!eq) continue;
        size_t klen = (size_t)(eq - m->w[i]);
        char *k = malloc(klen + 9), *v = strdup(eq + 1);
        if (!k || !v) abort();
        memcpy(k, "anygrad.", 8);
        memcpy(k + 8, m->w[i], klen);
        k[klen + 8] = '\0';
        d->meta_keys[d->nmeta] = k;
        d->meta_values[d->nmeta++] = v;
    }
    return d;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    words args = {1, {"anygrad"}}, meta = {0, {0}};
    words *into = &args;
    for (size_t at = 0; at <= size;) {
        char *w = buf + at;
        size_t len = strlen(w);
        if (!strcmp(w, "\x1e") && into == &args) into = &meta;
        else if (into->n < MAX_WORDS) into->w[into->n++] = w;
        at += len + 1;
    }
    char *argv[MAX_WORDS + 1], *copy[MAX_WORDS];
    memcpy(argv, args.w, sizeof args.w);
    argv[args.n] = NULL;
    for (int i = 0; i < args.n; i++) copy[i] = strdup(args.w[i]);

    static cli_args a, b; /* large: not on the stack */
    cli_parse(args.n, argv, &a);
    for (int i = 0; i < args.n; i++)
        if (argv[i] != args.w[i] || strcmp(argv[i], copy[i])) abort(); /* argv untouched */
    if (argv[args.n] != NULL) abort();
    cli_parse(args.n, argv, &b);
    if (memcmp(&a, &b, sizeof a)) abort(); /* pure: the same answer twice */
    if ((unsigned)a.cmd > CLI_SAMPLE || (unsigned)a.action > CLI_ERROR) abort();
    if (a.action == CLI_ERROR && (!a.err[0] || strlen(a.err) >= sizeof a.err)) abort();
    if (a.action != CLI_ERROR && a.err[0]) abort();
    if (a.cmd == CLI_TOOL && a.action == CLI_RUN) abort();

    static FILE *devnull;
    if (!devnull && !(devnull = fopen("/dev/null", "w"))) abort();
    cli_usage(a.cmd, devnull);

    if (a.action == CLI_RUN) {
        switch (a.cmd) {
        case CLI_TRAIN: {
            for (int i = 0; i < CLI_NTRAIN_OPTS; i++)
                if (a.train_set[i]) check_option(&a.train, i);
            ag_tensor_dict *ck = into == &meta ? settings(&meta) : NULL;
            char err[512] = "";
            int rc = cli_train_resolve(&a.train, a.train_set, ck, err, sizeof err);
            if (rc != 0 && rc != 1 && rc != 2) abort();
            if (rc && !err[0]) abort();
            if (rc == 1 && !ck) abort(); /* only a checkpoint's setting is a runtime failure */
            if (!rc) check_resolved(&a.train, a.train_set);
            ag_tensor_dict_free(ck);
            break;
        }
        case CLI_EVAL:
        case CLI_PREDICT:
            if (!a.eval.file || !a.eval.file[0] || a.eval.file[0] == '-' || !a.eval.data) abort();
            if (a.eval.model && !cli_find_model(a.eval.model)) abort();
            break;
        case CLI_PLOT:
            if (!a.plot.in || !a.plot.out || !a.plot.in[0] || !a.plot.out[0]) abort();
            break;
        case CLI_CHECK: {
            const char *s[] = {a.check.device, a.check.op, a.check.json, a.check.docs};
            for (int i = 0; i < 4; i++)
                if (s[i] && !s[i][0]) abort();
            break;
        }
        case CLI_BENCH:
            if (a.bench.device && !a.bench.device[0]) abort();
            break;
        case CLI_SAMPLE:
            if (!a.sample.file || !a.sample.file[0] || a.sample.file[0] == '-' || !a.sample.prompt ||
                !(a.sample.temperature > 0.0) || a.sample.tokens < 0 || a.sample.top_k < 0)
                abort();
            break;
        case CLI_DEVICES:
        case CLI_TOOL:
            break;
        }
    }
    for (int i = 0; i < args.n; i++) free(copy[i]);
    free(buf);
    return 0;
}
