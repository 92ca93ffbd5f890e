/* Subcommands of the anygrad tool: each runs on the options cli_parse (args.h)
 * read from the command line and returns the process exit status (0 success,
 * 1 runtime failure, 2 bad arguments). Also the small shared pieces they use. */
#ifndef AG_CLI_H
#define AG_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "args.h"

/* Text files that readers never see half-written: written aside, renamed
 * over path by cli_out_close (plot.c). */
typedef struct cli_outfile {
    FILE *f;
    char tmp[4096];
    const char *path;
} cli_outfile;
bool cli_out_open(cli_outfile *o, const char *path, char *err, size_t errsz);
bool cli_out_close(cli_outfile *o, char *err, size_t errsz);

/* A model from a layer description (layers.c; the grammar is there) for
 * samples of c x h x w (features: 1 x 1 x F) and classes outputs; NULL with
 * the reason in err. Whether it takes images: its first layer is conv or pool. */
ag_module *cli_layers_build(const char *desc, int64_t c, int64_t h, int64_t w, int64_t classes,
                            char *err, size_t errsz);
bool cli_layers_take_images(const char *desc);

int cli_check(const cli_check_opts *o);
int cli_check_list(void); /* check --list */
int cli_devices(const cli_devices_opts *o);
/* devices.c: makes --device NAME (NULL: AG_DEVICE or the probe's choice; in an
 * MPI job, the local rank's GPU) the default; false after saying why as
 * "anygrad CMD: --device NAME: ..." */
bool cli_use_device(const char *cmd, const char *name);
/* set: which options the command line gave (cli_args.train_set) */
int cli_train(const cli_train_opts *o, const bool set[CLI_NTRAIN_OPTS]);
/* dist.c: a job started by mpirun (nothing happens in a single process) */
int cli_dist_begin(const char *cmd);     /* 0, or the exit status */
bool cli_dist_on(void);                  /* several ranks */
bool cli_dist_leader(void);              /* rank 0, or no job: prints and writes files */
int cli_dist_end(int rc);                /* a failed rank ends the job */
ag_device *cli_dist_device(ag_device *dflt);
int cli_eval(const cli_eval_opts *o);
int cli_predict(const cli_eval_opts *o); /* train.c: the same options, --out too */
int cli_bench(const cli_bench_opts *o);    /* bench.c */
int cli_plot(const cli_plot_opts *o);
int cli_sample(const cli_sample_opts *o);     /* gpt.c */
/* gpt.c: anygrad train --model gpt (o resolved; ck the --resume checkpoint or NULL) */
int cli_gpt_train(const cli_train_opts *o, const ag_tensor_dict *ck);

/* ---- metrics log (plot.c) ------------------------------------------------
 * One row per logging point of a training run; NAN marks a value that was not
 * measured (validation and test accuracy exist only at the end of an epoch). */
typedef struct cli_metric_row {
    double epoch;      /* fractional: completed steps / steps per epoch */
    int64_t step;      /* optimizer steps so far */
    double loss;       /* mean training loss since the previous row */
    double train_acc;  /* training accuracy since the previous row */
    double val_acc, test_acc, lr;
    double seconds;    /* training time so far, without evaluation and saving */
    double val_loss, test_loss; /* mean cross-entropy where evaluated, else NaN */
} cli_metric_row;

typedef struct cli_metrics {
    int n, cap;
    cli_metric_row *rows;
} cli_metrics;

bool cli_metrics_push(cli_metrics *m, const cli_metric_row *r);
void cli_metrics_free(cli_metrics *m);
/* CSV with a header line; written to a temporary file and renamed over path. */
bool cli_metrics_write_csv(const cli_metrics *m, const char *path, char *err, size_t errsz);
bool cli_metrics_read_csv(const char *path, cli_metrics *m, char *err, size_t errsz);
/* Loss and accuracy curves against epochs as a standalone SVG file. */
bool cli_plot_svg(const cli_metrics *m, const char *path, const char *title, char *err,
                  size_t errsz);

/* ---- progress display (progress.c) ----------------------------------------
 * A redrawn one-line bar when stdout is a terminal, silent otherwise (the
 * caller prints a plain line per epoch either way). */
typedef struct cli_progress {
    bool tty, drawn;
    int64_t total;            /* batches this epoch */
    double t0, last_draw;
    char label[48];
} cli_progress;

double cli_now(void);         /* monotonic seconds */
double cli_peak_mb(void);     /* this process's peak resident memory (its children not included) */
void cli_progress_begin(cli_progress *p, const char *label, int64_t total_batches);
/* done batches so far, samples seen, running mean loss and accuracy. */
void cli_progress_update(cli_progress *p, int64_t done, int64_t samples, double loss,
                         double acc);
void cli_progress_end(cli_progress *p); /* erases the bar */

#endif
