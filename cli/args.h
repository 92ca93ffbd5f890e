/* The anygrad command line: its grammar, parsing argv into options, and the
 * usage texts. Parsing is pure: it opens no file, touches no device, prints
 * nothing and never exits; options point into argv (or at static defaults),
 * so they live as long as argv does. fuzz/fuzz_cli.c feeds it random argv. */
#ifndef AG_CLI_ARGS_H
#define AG_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "anygrad.h"

typedef enum cli_cmd { CLI_TOOL, CLI_CHECK, CLI_DEVICES, CLI_TRAIN, CLI_EVAL, CLI_PLOT, CLI_PREDICT, CLI_BENCH, CLI_SAMPLE } cli_cmd;

typedef enum cli_action {
    CLI_RUN,     /* run cmd with the options below */
    CLI_HELP,    /* print cmd's usage (the tool's for CLI_TOOL) to stdout, exit 0 */
    CLI_VERSION, /* print the version, exit 0 */
    CLI_LIST,    /* check --list: print the op names, exit 0 */
    CLI_ERROR,   /* bad arguments: print err (and the usage when usage_too), exit 2 */
} cli_action;

/* ---- anygrad train ---------------------------------------------------------- */

typedef struct cli_train_opts {
    const char *model, *layers, *optimizer, *schedule, *device, *data, *test_data, *save, *resume, *log, *plot;
    int64_t epochs, batch, warmup, step_size, limit, log_every, eval_every, label_column, seed;
    double lr, momentum, weight_decay, gamma, clip, val_frac;
    /* --model gpt: a text corpus, steps instead of epochs, the model's sizes */
    const char *text;
    int64_t steps, context, blocks, heads, width, eval_batches;
    double min_lr;
} cli_train_opts;

typedef enum cli_opt_type { CLI_STR, CLI_INT, CLI_REAL } cli_opt_type;

/* One --flag VALUE of anygrad train: its type and valid range, whether it is
 * part of the run's settings (stored in checkpoints, reused by --resume), its
 * default (NULL: worked out from the model or optimizer, or none) and help. */
typedef struct cli_optdef {
    const char *flag;
    cli_opt_type type;
    size_t off; /* in cli_train_opts */
    double lo, hi;
    bool stored;
    const char *def, *help;
} cli_optdef;

#define CLI_NTRAIN_OPTS 34
extern const cli_optdef *const CLI_TRAIN_OPTS; /* CLI_NTRAIN_OPTS of them */

/* Defaults that depend on the optimizer (strings: they go through the same
 * checks as the command line). */
typedef struct cli_optim_spec {
    const char *name;
    ag_optim_kind kind;
    const char *lr, *momentum, *weight_decay;
} cli_optim_spec;
const cli_optim_spec *cli_find_optim(const char *name); /* NULL when unknown */

/* The built-in models as layer descriptions (cli/layers.c), for train.c, bench.c
 * and the help text. The CNN is the TensorFlow layers tutorial's. */
#define CLI_MLP_LAYERS "linear 256, relu, linear 128, relu, linear"
#define CLI_CNN_LAYERS                                                                     \
    "conv 32 5 pad=2, relu, maxpool 2, conv 64 5 pad=2, relu, maxpool 2, flatten, linear " \
    "1024, relu, dropout 0.4, linear"

/* Model names with the defaults they change ("flag=value ..."); the models
 * themselves are built in train_models.c and gpt.c. */
typedef struct cli_model_defaults {
    const char *name, *defaults;
} cli_model_defaults;
const cli_model_defaults *cli_find_model(const char *name);

enum { CLI_SCHED_NONE, CLI_SCHED_COSINE, CLI_SCHED_STEP, CLI_NSCHEDS };
extern const char *const CLI_SCHEDULES[CLI_NSCHEDS];
int cli_find_schedule(const char *name); /* -1 when unknown */

/* ---- the other commands ------------------------------------------------------ */

typedef struct cli_check_opts {
    const char *device, *op, *json, *docs;
    bool quick, self_compare, no_model, verbose;
} cli_check_opts;

/* anygrad bench: every device, or one; quick: fewer and smaller runs */
typedef struct cli_bench_opts {
    const char *device;
    bool quick;
} cli_bench_opts;

typedef struct cli_devices_opts {
    bool verbose, calibrate, json;
} cli_devices_opts;

/* anygrad sample: text from a --model gpt checkpoint */
typedef struct cli_sample_opts {
    const char *file, *prompt, *device;
    int64_t tokens, top_k, seed;
    double temperature;
} cli_sample_opts;

/* anygrad eval and anygrad predict (out: predict's CSV, NULL for stdout) */
typedef struct cli_eval_opts {
    const char *file, *model, *data, *device, *out;
} cli_eval_opts;

typedef struct cli_plot_opts {
    const char *in, *out, *title;
} cli_plot_opts;

/* ---- the whole command line ---------------------------------------------------- */

typedef struct cli_args {
    cli_cmd cmd;
    cli_action action;
    bool usage_too;  /* CLI_ERROR: print cmd's usage after the message */
    char err[512];   /* CLI_ERROR: what is wrong, without the "anygrad cmd: " prefix */
    cli_train_opts train;
    bool train_set[CLI_NTRAIN_OPTS]; /* given on the command line (or resolved) */
    cli_check_opts check;
    cli_devices_opts devices;
    cli_bench_opts bench;
    cli_eval_opts eval;
    cli_plot_opts plot;
    cli_sample_opts sample;
} cli_args;

/* argv[0] is the program, argv[1] the command. Fills *out completely. */
void cli_parse(int argc, char *const *argv, cli_args *out);

/* Fills the train options the command line left unset: from the resumed
 * checkpoint's metadata (ck may be NULL), else the defaults (some depend on the
 * model and optimizer); then checks names and combinations. Reads only ck's
 * metadata. Returns 0, 1 (a bad setting in the checkpoint) or 2 (bad
 * arguments), with the message in err. */
int cli_train_resolve(cli_train_opts *o, bool set[CLI_NTRAIN_OPTS], const ag_tensor_dict *ck,
                      char *err, size_t errsz);

const char *cli_cmd_name(cli_cmd cmd);
void cli_usage(cli_cmd cmd, FILE *f);

#endif
