/* The anygrad command line (args.h): every command's options, parsed without
 * side effects, and the usage texts. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

static const struct {
    const char *name, *help;
} CMDS[] = {
    [CLI_CHECK] = {"check", "run the conformance matrix: every op on every device against the fp64 reference"},
    [CLI_DEVICES] = {"devices", "list the devices, the default one, and unavailable backends (-v, --json, --calibrate)"},
    [CLI_TRAIN] = {"train", "train a classifier (Fashion-MNIST, your IDX or CSV) or a GPT on text: progress, log, plot, checkpoints"},
    [CLI_EVAL] = {"eval", "test loss and accuracy of a checkpoint"},
    [CLI_PLOT] = {"plot", "draw a training log's loss and accuracy curves as SVG"},
    [CLI_PREDICT] = {"predict", "class and class probabilities of every sample, as CSV"},
    [CLI_BENCH] = {"bench", "GEMM, an MLP and a CNN training step on each device, one table"},
    [CLI_SAMPLE] = {"sample", "generate text with a checkpoint of anygrad train --model gpt"},
};

const char *cli_cmd_name(cli_cmd cmd)
{
    return cmd > CLI_TOOL && cmd <= CLI_SAMPLE ? CMDS[cmd].name : "";
}

/* ---- tables of anygrad train ------------------------------------------------ */

#define DEFAULT_TEXT "/usr/share/games/fortunes"

/* gpt: the baby GPT of nanoGPT's Shakespeare example on Debian's fortunes */
static const cli_model_defaults MODELS[] = {
    {"mlp", "epochs=10 batch=128"},
    {"cnn", "epochs=3 batch=100"},
    {"gpt", "steps=2000 batch=12 optimizer=adamw weight-decay=0.1 schedule=cosine warmup=100 "
            "min-lr=1e-4 eval-every=250 eval-batches=50 log-every=50 context=64 blocks=4 heads=4 "
            "width=128 text=" DEFAULT_TEXT},
};

/* The value a model's defaults give flag, in buf; NULL when none. */
static const char *model_default(const cli_model_defaults *m, const char *flag, char *buf, size_t size)
{
    size_t n = strlen(flag);
    for (const char *p = m ? m->defaults : NULL; p && *p;) {
        const char *end = strchr(p, ' ');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > n && p[n] == '=' && !strncmp(p, flag, n)) {
            snprintf(buf, size, "%.*s", (int)(len - n - 1), p + n + 1);
            return buf;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

const cli_model_defaults *cli_find_model(const char *name)
{
    for (size_t i = 0; name && i < sizeof MODELS / sizeof MODELS[0]; i++)
        if (!strcmp(MODELS[i].name, name)) return &MODELS[i];
    return NULL;
}

/* SGD without momentum is rarely what anyone wants on this task. */
static const cli_optim_spec OPTIMS[] = {
    {"adam", AG_OPTIM_ADAM, "0.001", "0", "0"},
    {"adamw", AG_OPTIM_ADAMW, "0.001", "0", "0.01"},
    {"sgd", AG_OPTIM_SGD, "0.05", "0.9", "0"},
    {"rmsprop", AG_OPTIM_RMSPROP, "0.001", "0", "0"},
};

const cli_optim_spec *cli_find_optim(const char *name)
{
    for (size_t i = 0; name && i < sizeof OPTIMS / sizeof OPTIMS[0]; i++)
        if (!strcmp(OPTIMS[i].name, name)) return &OPTIMS[i];
    return NULL;
}

const char *const CLI_SCHEDULES[CLI_NSCHEDS] = {"none", "cosine", "step"};

int cli_find_schedule(const char *name)
{
    for (int i = 0; name && i < CLI_NSCHEDS; i++)
        if (!strcmp(CLI_SCHEDULES[i], name)) return i;
    return -1;
}

#define OFF(f) offsetof(cli_train_opts, f)
static const cli_optdef OPTS[] = {
    {"model", CLI_STR, OFF(model), 0, 0, true, "mlp", "mlp, cnn, or gpt (a character-level transformer on --text)"},
    {"optimizer", CLI_STR, OFF(optimizer), 0, 0, true, "adam", "adam, adamw, sgd or rmsprop"},
    {"layers", CLI_STR, OFF(layers), 0, 0, true, NULL,
     "the model as layers instead of --model, e.g. \"conv 32 5 pad=2, relu, maxpool 2, flatten, "
     "linear 128, relu, dropout 0.2, linear\", or @FILE: the layers in a file, by lines or commas, # comments (see anygrad train --help)"},
    {"epochs", CLI_INT, OFF(epochs), 0, 1e9, true, NULL,
     "total epochs, counting those of a resumed checkpoint (mlp 10, cnn 3)"},
    {"batch", CLI_INT, OFF(batch), 1, 1e9, true, NULL, "mini-batch size (mlp 128, cnn 100)"},
    {"lr", CLI_REAL, OFF(lr), 1e-12, 1e6, true, NULL,
     "learning rate (adam, adamw, rmsprop 0.001; sgd 0.05)"},
    {"momentum", CLI_REAL, OFF(momentum), 0, 1, true, NULL, "sgd and rmsprop (sgd 0.9, rmsprop 0)"},
    {"weight-decay", CLI_REAL, OFF(weight_decay), 0, 1e6, true, NULL,
     "L2 penalty, decoupled for adamw (adamw 0.01, others 0)"},
    {"schedule", CLI_STR, OFF(schedule), 0, 0, true, "none",
     "learning-rate schedule over the whole run: none, cosine or step"},
    {"warmup", CLI_INT, OFF(warmup), 0, 1e12, true, "0", "linear warm-up over the first N steps"},
    {"step-size", CLI_INT, OFF(step_size), 0, 1e9, true, "0",
     "epochs between decays of --schedule step (default: a third of --epochs)"},
    {"gamma", CLI_REAL, OFF(gamma), 0, 1, true, "0.1", "decay factor of --schedule step"},
    {"clip", CLI_REAL, OFF(clip), 0, 1e30, true, "0", "clip the global gradient norm to X (0: off)"},
    {"device", CLI_STR, OFF(device), 0, 0, false, NULL, "cpu, cpu:0, ... (default: AG_DEVICE or the best)"},
    {"seed", CLI_INT, OFF(seed), 0, 9.2e18, true, "1", "initialisation, shuffling and dropout seed"},
    {"data", CLI_STR, OFF(data), 0, 0, false, DEFAULT_DATA, "IDX directory (train- and t10k-, images-idx3- and labels-idx1-ubyte, gzipped or not) or a CSV file: numbers, one row a sample, a label column, optional header"},
    {"test-data", CLI_STR, OFF(test_data), 0, 0, false, NULL,
     "with --data FILE.csv: the CSV file of the test set (default: none)"},
    {"label-column", CLI_INT, OFF(label_column), -1e6, 1e6, true, "-1",
     "CSV data: the column of the class labels, from 0 (negative: from the end)"},
    {"limit", CLI_INT, OFF(limit), 0, 1e12, true, "0", "use only the first N training images (0: all)"},
    {"val-frac", CLI_REAL, OFF(val_frac), 0, 0.9, true, "0.1",
     "fraction of the training images held out for validation"},
    {"save", CLI_STR, OFF(save), 0, 0, false, NULL, "write a checkpoint after every epoch"},
    {"resume", CLI_STR, OFF(resume), 0, 0, false, NULL,
     "continue from a checkpoint (its settings are the defaults) and save back to it "
     "unless --save names another file"},
    {"log", CLI_STR, OFF(log), 0, 0, false, NULL,
     "metrics CSV: epoch,step,loss,train_acc,val_acc,test_acc,lr,seconds,val_loss,test_loss"},
    {"log-every", CLI_INT, OFF(log_every), 0, 1e12, true, NULL,
     "log a row every N steps (default: 10 rows an epoch; 0: epochs only)"},
    {"plot", CLI_STR, OFF(plot), 0, 0, false, NULL, "draw the logged curves as an SVG file"},
    {"eval-every", CLI_INT, OFF(eval_every), 0, 1e12, true, "1",
     "evaluate the test set every N epochs (0: after the last only); gpt: the validation loss every N steps (250)"},
    {"text", CLI_STR, OFF(text), 0, 0, true, NULL,
     "gpt: a text file, or a directory whose files are read in name order (default " DEFAULT_TEXT ")"},
    {"steps", CLI_INT, OFF(steps), 0, 1e12, true, NULL, "gpt: optimizer steps (2000)"},
    {"context", CLI_INT, OFF(context), 0, 65536, true, NULL, "gpt: context length in characters (64)"},
    {"blocks", CLI_INT, OFF(blocks), 0, 256, true, NULL, "gpt: transformer blocks (4)"},
    {"heads", CLI_INT, OFF(heads), 0, 1024, true, NULL, "gpt: attention heads (4)"},
    {"width", CLI_INT, OFF(width), 0, 65536, true, NULL, "gpt: model width, a multiple of --heads (128)"},
    {"eval-batches", CLI_INT, OFF(eval_batches), 0, 1e6, true, NULL,
     "gpt: random batches each loss estimate averages (50)"},
    {"min-lr", CLI_REAL, OFF(min_lr), 0, 1e6, true, "0", "the cosine schedule's last rate (gpt 1e-4)"},
};
#undef OFF
_Static_assert(sizeof OPTS / sizeof OPTS[0] == CLI_NTRAIN_OPTS, "CLI_NTRAIN_OPTS is the table's size");
const cli_optdef *const CLI_TRAIN_OPTS = OPTS;

static int find_opt(const char *flag)
{
    for (int i = 0; i < CLI_NTRAIN_OPTS; i++)
        if (!strcmp(CLI_TRAIN_OPTS[i].flag, flag)) return i;
    return -1;
}

static void say(char *err, size_t errsz, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void say(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

/* Stores text as option o's value; false (with a message) when it is not one. */
static bool set_value(cli_train_opts *t, const cli_optdef *o, const char *text, char *err,
                      size_t errsz)
{
    void *at = (char *)t + o->off;
    if (o->type == CLI_STR) {
        if (!*text) {
            say(err, errsz, "--%s needs a non-empty value", o->flag);
            return false;
        }
        *(const char **)at = text;
        return true;
    }
    char *end = NULL;
    errno = 0;
    long long i = 0;
    double v;
    if (o->type == CLI_INT) {
        i = strtoll(text, &end, 10);
        v = (double)i;
    } else {
        v = strtod(text, &end);
    }
    if (end == text || *end || errno || !(v >= o->lo && v <= o->hi)) {
        say(err, errsz, "bad value '%s' for --%s: want %s in [%g, %g]", text, o->flag,
            o->type == CLI_INT ? "an integer" : "a number", o->lo, o->hi);
        return false;
    }
    if (o->type == CLI_INT)
        *(int64_t *)at = i;
    else
        *(double *)at = v;
    return true;
}

/* ---- parsing ---------------------------------------------------------------- */

static void fail(cli_args *a, bool usage_too, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void fail(cli_args *a, bool usage_too, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->err, sizeof a->err, fmt, ap);
    va_end(ap);
    a->action = CLI_ERROR;
    a->usage_too = usage_too;
}

static bool is_help(const char *s) { return !strcmp(s, "--help") || !strcmp(s, "-h"); }

/* Each parser stops at the first error or request for help. */
static void parse_train(int argc, char *const *argv, cli_args *a)
{
    cli_train_opts *t = &a->train;
    t->weight_decay = -1.0; /* unset: the optimizer's own default */
    t->log_every = -1;      /* unset: ten rows an epoch */
    for (int i = 1; i < argc && a->action == CLI_RUN; i++) {
        const char *s = argv[i];
        int k = !strncmp(s, "--", 2) ? find_opt(s + 2) : -1;
        if (is_help(s)) {
            a->action = CLI_HELP;
        } else if (k < 0) {
            fail(a, false, "unknown option '%s' (see anygrad train --help)", s);
        } else if (i + 1 >= argc) {
            fail(a, false, "%s needs a value", s);
        } else if (!set_value(t, &CLI_TRAIN_OPTS[k], argv[++i], a->err, sizeof a->err)) {
            a->action = CLI_ERROR;
        } else {
            a->train_set[k] = true;
        }
    }
}

/* For an option that takes a value: the next argument, which must not be empty. */
static void take_value(int argc, char *const *argv, int *i, const char **value, cli_args *a)
{
    if (*i + 1 >= argc || !*argv[*i + 1])
        fail(a, true, "%s needs a non-empty value", argv[*i]);
    else
        *value = argv[++*i];
}

static void parse_check(int argc, char *const *argv, cli_args *a)
{
    cli_check_opts *c = &a->check;
    for (int i = 1; i < argc && a->action == CLI_RUN; i++) {
        const char *s = argv[i];
        if (is_help(s)) a->action = CLI_HELP;
        else if (!strcmp(s, "--list")) a->action = CLI_LIST;
        else if (!strcmp(s, "--quick")) c->quick = true;
        else if (!strcmp(s, "--self-compare")) c->self_compare = true;
        else if (!strcmp(s, "--no-model")) c->no_model = true;
        else if (!strcmp(s, "-v")) c->verbose = true;
        else if (!strcmp(s, "--device")) take_value(argc, argv, &i, &c->device, a);
        else if (!strcmp(s, "--op")) take_value(argc, argv, &i, &c->op, a);
        else if (!strcmp(s, "--json")) take_value(argc, argv, &i, &c->json, a);
        else if (!strcmp(s, "--docs")) take_value(argc, argv, &i, &c->docs, a);
        else fail(a, true, "unknown option '%s'", s);
    }
}

static void parse_devices(int argc, char *const *argv, cli_args *a)
{
    cli_devices_opts *d = &a->devices;
    for (int i = 1; i < argc && a->action == CLI_RUN; i++) {
        const char *s = argv[i];
        if (is_help(s)) a->action = CLI_HELP;
        else if (!strcmp(s, "-v")) d->verbose = true;
        else if (!strcmp(s, "--calibrate")) d->calibrate = true;
        else if (!strcmp(s, "--json")) d->json = true;
        else fail(a, true, "unknown option '%s'", s);
    }
}

static void parse_bench(int argc, char *const *argv, cli_args *a)
{
    cli_bench_opts *b = &a->bench;
    for (int i = 1; i < argc && a->action == CLI_RUN; i++) {
        const char *s = argv[i];
        if (is_help(s)) a->action = CLI_HELP;
        else if (!strcmp(s, "--quick")) b->quick = true;
        else if (!strcmp(s, "--device")) take_value(argc, argv, &i, &b->device, a);
        else fail(a, true, "unknown option '%s'", s);
    }
}

/* An operand: a non-empty word that is not an option. */
static bool operand(const char *s) { return *s && *s != '-'; }

static void parse_eval(int argc, char *const *argv, cli_args *a)
{
    cli_eval_opts *e = &a->eval;
    e->data = DEFAULT_DATA;
    for (int i = 1; i < argc && a->action == CLI_RUN; i++) {
        const char *s = argv[i];
        if (is_help(s)) a->action = CLI_HELP;
        else if (!strcmp(s, "--model")) take_value(argc, argv, &i, &e->model, a);
        else if (!strcmp(s, "--data")) take_value(argc, argv, &i, &e->data, a);
        else if (!strcmp(s, "--device")) take_value(argc, argv, &i, &e->device, a);
        else if (!strcmp(s, "--out") && a->cmd == CLI_PREDICT) take_value(argc, argv, &i, &e->out, a);
        else if (operand(s) && !e->file) e->file = s;
        else fail(a, true, "unexpected argument '%s'", s);
    }
    if (a->action != CLI_RUN) return;
    if (!e->file) fail(a, true, "which checkpoint?");
    else if (e->model && !cli_find_model(e->model))
        fail(a, false, "unknown --model '%s' (want mlp or cnn)", e->model);
}

/* A whole number in [lo, hi] into *out, or a failure naming flag. */
static void take_int(int argc, char *const *argv, int *i, int64_t *out, double lo, double hi, cli_args *a)
{
    const char *flag = argv[*i], *v = NULL;
    take_value(argc, argv, i, &v, a);
    if (!v) return;
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || !*v || *end || (double)x < lo || (double)x > hi)
        fail(a, false, "%s %s: want a whole number from %.0f to %.0f", flag, v, lo, hi);
    else
        *out = x;
}

static void parse_sample(int argc, char *const *argv, cli_args *a)
{
    cli_sample_opts *o = &a->sample;
    o->prompt = "\n";
    o->tokens = 500;
    o->top_k = 0;
    o->seed = 1;
    o->temperature = 1.0;
    for (int i = 1; i < argc && a->action == CLI_RUN; i++) {
        const char *s = argv[i];
        if (is_help(s)) a->action = CLI_HELP;
        else if (!strcmp(s, "--prompt")) take_value(argc, argv, &i, &o->prompt, a);
        else if (!strcmp(s, "--device")) take_value(argc, argv, &i, &o->device, a);
        else if (!strcmp(s, "--tokens")) take_int(argc, argv, &i, &o->tokens, 0, 1e7, a);
        else if (!strcmp(s, "--top-k")) take_int(argc, argv, &i, &o->top_k, 0, 1e6, a);
        else if (!strcmp(s, "--seed")) take_int(argc, argv, &i, &o->seed, 0, 9.2e18, a);
        else if (!strcmp(s, "--temperature")) {
            const char *v = NULL;
            take_value(argc, argv, &i, &v, a);
            char *end = NULL;
            double t = v ? strtod(v, &end) : 0.0;
            if (v && (!*v || *end || !(t > 0.0 && t <= 100.0)))
                fail(a, false, "--temperature %s: want a number above 0 (up to 100)", v);
            else if (v)
                o->temperature = t;
        } else if (operand(s) && !o->file) o->file = s;
        else fail(a, true, "unexpected argument '%s'", s);
    }
    if (a->action == CLI_RUN && !o->file) fail(a, true, "which checkpoint?");
}

static void parse_plot(int argc, char *const *argv, cli_args *a)
{
    cli_plot_opts *p = &a->plot;
    for (int i = 1; i < argc && a->action == CLI_RUN; i++) {
        const char *s = argv[i];
        if (is_help(s)) a->action = CLI_HELP;
        else if (!strcmp(s, "--title") && i + 1 < argc) p->title = argv[++i];
        else if (operand(s) && !p->in) p->in = s;
        else if (operand(s) && !p->out) p->out = s;
        else fail(a, true, "unexpected argument '%s'", s);
    }
    if (a->action == CLI_RUN && (!p->in || !p->out))
        fail(a, true, "needs a log file and an output file");
}

void cli_parse(int argc, char *const *argv, cli_args *a)
{
    memset(a, 0, sizeof *a);
    a->cmd = CLI_TOOL;
    a->action = CLI_RUN;
    const char *c = argc >= 2 && argv ? argv[1] : NULL;
    if (!c) {
        fail(a, true, "which command?");
        return;
    }
    if (!strcmp(c, "--help") || !strcmp(c, "-h") || !strcmp(c, "help")) {
        a->action = CLI_HELP;
        return;
    }
    if (!strcmp(c, "--version")) {
        a->action = CLI_VERSION;
        return;
    }
    for (int k = CLI_CHECK; k <= CLI_SAMPLE; k++)
        if (!strcmp(c, CMDS[k].name)) a->cmd = (cli_cmd)k;
    switch (a->cmd) {
    case CLI_CHECK: parse_check(argc - 1, argv + 1, a); break;
    case CLI_DEVICES: parse_devices(argc - 1, argv + 1, a); break;
    case CLI_TRAIN: parse_train(argc - 1, argv + 1, a); break;
    case CLI_EVAL:
    case CLI_PREDICT: parse_eval(argc - 1, argv + 1, a); break;
    case CLI_PLOT: parse_plot(argc - 1, argv + 1, a); break;
    case CLI_BENCH: parse_bench(argc - 1, argv + 1, a); break;
    case CLI_SAMPLE: parse_sample(argc - 1, argv + 1, a); break;
    case CLI_TOOL: fail(a, true, "unknown command '%s'", c); break;
    }
}

/* ---- resolving anygrad train's defaults ----------------------------------------- */

/* Option i's value when the command line left it unset: the resumed
 * checkpoint's setting, else the default. */
static const char *fallback(const cli_train_opts *o, const ag_tensor_dict *ck, int i, bool *from_ck)
{
    const cli_optdef *d = &CLI_TRAIN_OPTS[i];
    char key[64];
    snprintf(key, sizeof key, "anygrad.%s", d->flag);
    const char *v = ck && d->stored ? ag_tensor_dict_meta(ck, key) : NULL;
    *from_ck = v != NULL;
    if (v) return v;
    const cli_model_defaults *ms = cli_find_model(o->model);
    const cli_optim_spec *os = cli_find_optim(o->optimizer);
    const char *f = d->flag;
    static char mbuf[CLI_NTRAIN_OPTS][256]; /* the returned value outlives the call */
    const char *mv = model_default(ms, f, mbuf[i], sizeof mbuf[i]);
    if (mv) return mv;
    if (os && !strcmp(f, "lr")) return os->lr;
    if (os && !strcmp(f, "momentum")) return os->momentum;
    if (os && !strcmp(f, "weight-decay")) return os->weight_decay;
    return d->def;
}

int cli_train_resolve(cli_train_opts *o, bool set[CLI_NTRAIN_OPTS], const ag_tensor_dict *ck,
                      char *err, size_t errsz)
{
    /* model and optimizer first: other defaults depend on them */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < CLI_NTRAIN_OPTS; i++) {
            const cli_optdef *d = &CLI_TRAIN_OPTS[i];
            bool first = !strcmp(d->flag, "model") || !strcmp(d->flag, "optimizer"), from_ck;
            if (set[i] || first != (pass == 0)) continue;
            const char *v = fallback(o, ck, i, &from_ck);
            char why[384];
            if (v && !set_value(o, d, v, why, sizeof why)) {
                say(err, errsz, "%s%s", from_ck ? "checkpoint settings: " : "", why);
                return 1;
            }
            set[i] = v != NULL;
        }
    }
    const cli_optim_spec *os = cli_find_optim(o->optimizer);
    if (!cli_find_model(o->model)) {
        say(err, errsz, "unknown --model '%s' (want mlp, cnn or gpt)", o->model);
        return 2;
    }
    if (!strcmp(o->model, "gpt") && o->layers) {
        say(err, errsz, "--layers describes a classifier; --model gpt takes --blocks, --heads and --width");
        return 2;
    }
    /* 0: unset (a classifier's checkpoint stores them so) */
    const int64_t gpt_sizes[6] = {o->steps, o->context, o->blocks, o->heads, o->width, o->eval_batches};
    static const char *const gpt_flags[6] = {"steps", "context", "blocks", "heads", "width", "eval-batches"};
    for (int i = 0; i < 6 && !strcmp(o->model, "gpt"); i++)
        if (gpt_sizes[i] < 1) {
            say(err, errsz, "--%s must be at least 1 for --model gpt", gpt_flags[i]);
            return 2;
        }
    if (!strcmp(o->model, "gpt") && o->width % o->heads) {
        say(err, errsz, "--width %lld is not a multiple of --heads %lld", (long long)o->width,
            (long long)o->heads);
        return 2;
    }
    if (!os) {
        say(err, errsz, "unknown --optimizer '%s' (want adam, adamw, sgd or rmsprop)", o->optimizer);
        return 2;
    }
    if (cli_find_schedule(o->schedule) < 0) {
        say(err, errsz, "unknown --schedule '%s' (want none, cosine or step)", o->schedule);
        return 2;
    }
    if (o->momentum > 0.0 && os->kind != AG_OPTIM_SGD && os->kind != AG_OPTIM_RMSPROP) {
        say(err, errsz, "--momentum applies to sgd and rmsprop, not %s", os->name);
        return 2;
    }
    return 0;
}

/* ---- usage texts ---------------------------------------------------------------- */

static void tool_usage(FILE *f)
{
    fprintf(f, "usage: anygrad [--help] [--version] <command> [args]\n\ncommands:\n");
    for (int k = CLI_CHECK; k <= CLI_SAMPLE; k++) fprintf(f, "  %-9s %s\n", CMDS[k].name, CMDS[k].help);
    fprintf(f, "\n`anygrad <command> --help` describes a command.\n");
}

static void check_usage(FILE *f)
{
    fprintf(f,
            "usage: anygrad check [--device NAME] [--op NAME] [--quick] [--json FILE]\n"
            "                     [--docs FILE] [--self-compare] [--no-model] [--list] [-v]\n\n"
            "Runs every op of the op table on every available device (or --device NAME, e.g.\n"
            "cpu, cpu:0) against an fp64 reference: forward values, gradients against central\n"
            "differences, devices against each other, and a small MLP trained 50 Adam steps.\n"
            "Prints op rows x device columns with PASS/FAIL and the worst error as a fraction of\n"
            "the tolerance (<= 1 passes); exits 1 on any failure.\n\n"
            "  --quick         3 seeds per shape (normal, wide, edge values) instead of 6\n"
            "  --op NAME       only this op (see --list)\n"
            "  --json FILE     write every case's result to FILE\n"
            "  --docs FILE     write the op coverage page (docs/ops.md) to FILE\n"
            "  --self-compare  with one device, run it again with AG_NUM_THREADS=1 and compare\n"
            "  --no-model      skip the MLP agreement check\n"
            "  --list          list the ops and exit\n"
            "  -v              print each op as it finishes\n");
}

static void devices_usage(FILE *f)
{
    fprintf(f, "usage: anygrad devices [-v] [--calibrate] [--json]\n\n"
               "Lists every device: index, backend, name, kind, memory, calibrated SGEMM\n"
               "GFLOP/s and copy GB/s (measured once, cached on disk), and marks the default\n"
               "(* ; AG_DEVICE overrides it). Backends that could not be used are listed with\n"
               "the reason.\n\n"
               "  -v           driver details of each device\n"
               "  --calibrate  measure every device now (about 100 ms each)\n"
               "  --json       machine-readable output\n");
}

static void train_usage(FILE *f)
{
    fprintf(f, "usage: anygrad train [--OPTION VALUE]...\n\n"
               "Trains a classifier on Fashion-MNIST, your IDX images or a CSV table:\n"
               "a progress bar on a terminal, one line an epoch otherwise, validation and\n"
               "test accuracy after each epoch, a final summary.\n\n");
    for (int i = 0; i < CLI_NTRAIN_OPTS; i++) {
        const cli_optdef *o = &CLI_TRAIN_OPTS[i];
        char left[40];
        snprintf(left, sizeof left, "--%s %s", o->flag,
                 o->type == CLI_STR ? "S" : o->type == CLI_INT ? "N" : "X");
        fprintf(f, "  %-18s %s", left, o->help);
        if (o->def && strcmp(o->def, "0")) fprintf(f, " (default %s)", o->def);
        fputc('\n', f);
    }
    fprintf(f, "\n--layers: layers separated by commas, each a name, numbers and key=value\n"
               "options; shapes follow from the data, a last `linear` without a size gets one\n"
               "output per class. conv C K [stride= pad= dilation= bias=], maxpool K and\n"
               "avgpool K [stride= pad=], linear N [bias=], flatten, dropout P, batchnorm,\n"
               "layernorm, relu, gelu, tanh, sigmoid, silu, leakyrelu [SLOPE]. A model that\n"
               "starts with conv or a pool takes images [C, H, W], any other flat features.\n"
               "--model mlp is \"" CLI_MLP_LAYERS "\";\n--model cnn \"" CLI_CNN_LAYERS "\".\n");
    fprintf(f, "\nCSV rows: loss and train_acc are means since the previous row (with dropout\n"
               "active); val_acc and test_acc are filled at the end of each epoch; seconds\n"
               "is training time so far, without evaluation and saving.\n"
               "Exit status: 0 success, 1 runtime failure, 2 bad arguments.\n");
}

static void eval_usage(FILE *f)
{
    fprintf(f, "usage: anygrad eval FILE [--model mlp|cnn] [--data DIR] [--device NAME]\n\n"
               "Loads a checkpoint (from anygrad train --save, or weights saved by the\n"
               "examples) and reports its loss and accuracy on the test images.\n"
               "The model comes from the checkpoint unless --model is given.\n");
}

static void predict_usage(FILE *f)
{
    fprintf(f, "usage: anygrad predict FILE --data DATA [--out PRED.csv] [--model mlp|cnn]\n"
               "                       [--device NAME]\n\n"
               "Runs a checkpoint of anygrad train on new samples and writes, a row each,\n"
               "index,class,p0,p1,... (the predicted class and every class's probability)\n"
               "to --out or standard output. DATA: a CSV file (the features, with or\n"
               "without the label column), an IDX images file, or an IDX directory (its\n"
               "t10k images); samples must have the shape the model was trained on.\n");
}

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: anygrad bench [--device NAME] [--quick]\n\n"
               "Times, on every device (or the one named): SGEMM at n = 256, 512 and 1024\n"
               "(GFLOP/s), a training step (forward, backward, Adam) of the 784-256-128-10\n"
               "MLP at batch 128 and of the CNN of anygrad train --model cnn at batch 32\n"
               "(milliseconds), each the median of several runs after a warm-up, and prints\n"
               "one table. --quick: fewer runs and n up to 512. Machines are noisy: compare\n"
               "numbers from one run. bench/ in the source tree has the comparisons with\n"
               "OpenBLAS and PyTorch.\n");
}

static void sample_usage(FILE *f)
{
    fprintf(f, "usage: anygrad sample FILE [--prompt TEXT] [--tokens N] [--temperature T]\n"
               "                      [--top-k K] [--seed S] [--device NAME]\n\n"
               "Generates text with a checkpoint of anygrad train --model gpt: the prompt\n"
               "(default a newline; its characters must be in the model's vocabulary), then\n"
               "N more characters (500), each drawn from the model's distribution divided by\n"
               "the temperature (1; lower is more conservative), among the K likeliest (0:\n"
               "all). The same seed (1) gives the same text.\n");
}

static void plot_usage(FILE *f)
{
    fprintf(f, "usage: anygrad plot LOG.csv OUT.svg [--title TEXT]\n\n"
               "Draws the loss and accuracy curves of a metrics log written by\n"
               "`anygrad train --log` as an SVG file.\n");
}

void cli_usage(cli_cmd cmd, FILE *f)
{
    switch (cmd) {
    case CLI_CHECK: check_usage(f); break;
    case CLI_DEVICES: devices_usage(f); break;
    case CLI_TRAIN: train_usage(f); break;
    case CLI_EVAL: eval_usage(f); break;
    case CLI_PREDICT: predict_usage(f); break;
    case CLI_BENCH: bench_usage(f); break;
    case CLI_PLOT: plot_usage(f); break;
    case CLI_SAMPLE: sample_usage(f); break;
    case CLI_TOOL: tool_usage(f); break;
    }
}
