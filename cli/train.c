/* anygrad train: classifiers (train_models.c) on IDX or CSV data (train_data.c)
 * trained with the loader, logged, plotted and checkpointed with the run's
 * settings (train_ckpt.c), on one process or as a rank of an MPI job (dist.c). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "anygrad.h"
#include "cli.h"
#include "train.h"

/* ---- the training run -------------------------------------------------------- */

typedef struct run {
    cli_train_opts o;
    const model_spec *ms;
    model_spec custom;      /* ms for a --layers model */
    dims d;                 /* the model's sample shape and classes */
    const cli_optim_spec *os;
    int sched;
    ag_module *m;
    ag_optim *opt;
    ag_loader *train, *val, *test;
    norm z;                 /* input normalisation */
    bool csv;               /* --data is a CSV file */
    int64_t start_epoch, steps_per_epoch;
    int64_t skip;           /* steps of start_epoch a Ctrl-C'ed run finished (resume there) */
    bool stop;              /* Ctrl-C, as every rank agreed after the same step */
    double carry[6];        /* the interrupted epoch's sums at skip (see epoch_stats.sums) */
    int64_t cos_from;       /* > 0: the cosine restarts here from cos_lr (a resume that */
    float cos_lr;           /* changed --epochs), instead of jumping to the new curve */
    cli_metrics log;
    double time_offset;
} run;

/* A cosine plan that ends at step total; from a step on (from > 0) it is
 * bent to start at from_lr there (a resume that moved the end). */
static float cosine_at(float base, int64_t from, float from_lr, int64_t total, int64_t step)
{
    if (from > 0 && step >= from) {
        int64_t left = total - from;
        return ag_lr_cosine(from_lr, step - from, left > 0 ? left : 1, 0.0f);
    }
    return ag_lr_cosine(base, step, total > 0 ? total : 1, 0.0f);
}

static int64_t sched_total(const run *r)
{
    return r->o.epochs * r->steps_per_epoch;
}

static float lr_at(const run *r, int64_t step)
{
    float base = (float)r->o.lr, lr = base;
    if (r->sched == CLI_SCHED_COSINE)
        lr = cosine_at(base, r->cos_from, r->cos_lr, sched_total(r), step);
    if (r->sched == CLI_SCHED_STEP) {
        int64_t every = r->o.step_size > 0 ? r->o.step_size : (r->o.epochs + 2) / 3;
        lr = ag_lr_step_decay(base, step, (every > 0 ? every : 1) * r->steps_per_epoch, (float)r->o.gamma);
    }
    return ag_lr_warmup(lr, step, r->o.warmup);
}

/* Dropout draws from the global generator: reseeding every step makes a run
 * resumed anywhere, even mid-epoch, draw the same masks as one never stopped. */
static uint64_t step_seed(uint64_t seed, int64_t step)
{
    return (seed ^ 0x5851f42d4c957f2dULL) + 0x9e3779b97f4a7c15ULL * (uint64_t)(step + 1);
}

/* Ctrl-C stops at the end of the step in progress (a second one kills at once):
 * the bar is cleared, the user told what was kept, the exit status 130. */
static volatile sig_atomic_t interrupted;
bool tr_interrupted(void) { return interrupted != 0; }
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

void tr_catch_interrupt(bool on)
{
    /* SIGUSR1 too: mpirun ends its ranks on Ctrl-C but forwards SIGUSR1, so
     * `kill -USR1 <mpirun's pid>` stops a job the same way */
    static const int sigs[2] = {SIGINT, SIGUSR1};
    for (int i = 0; i < 2; i++) {
        struct sigaction old, sa;
        /* an ignored SIGINT (nohup, a background job) stays ignored */
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on ? on_sigint : SIG_DFL;
        sa.sa_flags = on ? (int)SA_RESETHAND : 0;
        sigemptyset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

static int fail(const char *what)
{
    fprintf(stderr, "anygrad train: %s: %s\n", what, ag_last_error());
    return 1;
}

static bool write_outputs(run *r)
{
    char err[512];
    bool ok = true;
    if (r->o.log && !cli_metrics_write_csv(&r->log, r->o.log, err, sizeof err)) ok = false;
    char title[256];
    snprintf(title, sizeof title, "anygrad train %s%s: %s lr %g, batch %lld",
             r->o.layers ? "--layers " : "--model ", r->o.layers ? r->o.layers : r->o.model,
             r->o.optimizer, r->o.lr, (long long)r->o.batch);
    if (ok && r->o.plot && !cli_plot_svg(&r->log, r->o.plot, title, err, sizeof err)) ok = false;
    if (!ok) fprintf(stderr, "anygrad train: %s\n", err);
    return ok;
}

typedef struct epoch_stats {
    double loss, acc, seconds, val_loss, val_acc, test_loss, test_acc;
    int64_t samples, steps; /* steps: done in the epoch, also when interrupted */
    /* an interrupted epoch's loss sum, samples and hits, logged and since the
     * last row: a resumed run goes on with them, so its log is the same */
    double sums[6];
} epoch_stats;

/* One pass over the training loader; rows go to the log every log_every steps. */
static bool train_epoch(run *r, int64_t e, epoch_stats *st)
{
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(r->m, &np);
    char label[48];
    snprintf(label, sizeof label, "epoch %lld/%lld", (long long)e + 1, (long long)r->o.epochs);
    cli_progress bar;
    cli_progress_begin(&bar, label, r->steps_per_epoch);
    if (ag_loader_start_epoch(r->train, e) != AG_OK) return false;
    double t0 = cli_now(), lsum = 0.0, isum = 0.0;
    int64_t seen = 0, correct = 0, iseen = 0, icorrect = 0, done = 0;
    /* a run interrupted in this epoch goes on after its last finished step */
    for (; e == r->start_epoch && done < r->skip; done++) {
        ag_tensor *x, *y;
        ag_scope_begin();
        bool got = ag_loader_next(r->train, &x, &y);
        ag_scope_end();
        if (!got) { /* setup_model checked the step against the epoch's length */
            cli_progress_end(&bar);
            return false;
        }
    }
    st->steps = done;
    if (e == r->start_epoch && r->skip > 0) {
        lsum = r->carry[0], seen = (int64_t)r->carry[1], correct = (int64_t)r->carry[2];
        isum = r->carry[3], iseen = (int64_t)r->carry[4], icorrect = (int64_t)r->carry[5];
    }
    for (;;) {
        ag_tensor *x, *y;
        int64_t step = ag_optim_steps(r->opt);
        float lr = lr_at(r, step), lv = 0.0f, norm;
        /* each rank its own masks (the same for every rank would correlate them) */
        ag_manual_seed(step_seed((uint64_t)r->o.seed, step) +
                       (cli_dist_on() ? 0x632be59bd9b4e019ULL * (uint64_t)ag_dist_rank() : 0));
        ag_scope_begin();
        if (!ag_loader_next(r->train, &x, &y)) {
            ag_scope_end();
            if (ag_last_status() != AG_OK) {
                cli_progress_end(&bar);
                return false;
            }
            break;
        }
        int64_t b = ag_dim(y, 0), hits = 0, global = b;
        bool stop = interrupted; /* read once: under MPI the ranks' values are summed */
        r->stop = false;
        bool ok = ag_optim_zero_grad(r->opt) == AG_OK;
        if (ok && b > 0) { /* a rank's part of a short last batch can be empty */
            ag_tensor *logits = ag_module_forward(r->m, x);
            ag_tensor *loss = ag_cross_entropy(logits, y, AG_REDUCTION_MEAN, 0.0f);
            ok = loss && ag_backward(loss, NULL) == AG_OK && ag_item(loss, &lv) == AG_OK &&
                 ag_count_correct(logits, y, &hits) == AG_OK;
        }
        /* several ranks: the global batch's mean gradient, loss and hits. A rank
         * whose step failed still joins both collectives, so that the others
         * learn of it instead of waiting. */
        if (cli_dist_on()) {
            int64_t local = b;
            ag_loader_last_batch(r->train, &local, &global);
            bool avg = ag_dist_average_gradients(np, params, (double)local / (double)global) == AG_OK;
            double sums[5] = {(double)lv * (double)b, (double)hits, (double)b, stop ? 1.0 : 0.0,
                              ok ? 0.0 : 1.0};
            if (avg && ag_dist_sum(sums, 5) == AG_OK) {
                lv = sums[2] > 0.0 ? (float)(sums[0] / sums[2]) : 0.0f;
                hits = (int64_t)sums[1];
                b = (int64_t)sums[2];
                stop = sums[3] > 0.0; /* all ranks stop after the same step */
                if (ok && sums[4] > 0.0) {
                    ag_clear_error();
                    fprintf(stderr, "anygrad train: rank %d: another rank failed at step %lld\n",
                            ag_dist_rank(), (long long)step + 1);
                    ok = false;
                }
            } else {
                ok = false;
            }
        }
        ok = ok && (r->o.clip <= 0.0 || ag_clip_grad_norm(np, params, (float)r->o.clip, &norm) == AG_OK) &&
             ag_optim_set_lr(r->opt, lr) == AG_OK && ag_optim_step(r->opt) == AG_OK;
        (void)global;
        ag_scope_end();
        r->stop = ok && stop;
        if (!ok || !isfinite(lv)) cli_progress_end(&bar); /* a message follows */
        if (!ok) return false;
        if (!isfinite(lv)) {
            r->stop = false; /* nothing worth keeping */
            ag_clear_error();
            fprintf(stderr, "anygrad train: the loss became %g at step %lld; try a smaller --lr "
                            "or --clip\n", (double)lv, (long long)step + 1);
            return false;
        }
        isum += (double)lv * (double)b;
        iseen += b;
        icorrect += hits;
        correct += hits;
        done++;
        cli_progress_update(&bar, done, seen + iseen, (lsum + isum) / (double)(seen + iseen),
                            (double)correct / (double)(seen + iseen));
        /* The last row of an epoch takes the leftover steps, so no row averages
         * over a stub of one or two batches. */
        bool last = done == r->steps_per_epoch, every = r->o.log_every > 0;
        if (last || (every && done % r->o.log_every == 0 &&
                     done + r->o.log_every <= r->steps_per_epoch)) {
            cli_metric_row row = {
                .epoch = (double)e + (double)done / (double)r->steps_per_epoch,
                .step = step + 1, .loss = isum / (double)iseen,
                .train_acc = (double)icorrect / (double)iseen, .val_acc = NAN, .test_acc = NAN,
                .val_loss = NAN, .test_loss = NAN,
                .lr = lr, .seconds = r->time_offset + cli_now() - t0};
            if (!cli_metrics_push(&r->log, &row)) {
                cli_progress_end(&bar);
                ag_clear_error();
                fprintf(stderr, "anygrad train: out of memory for the metrics log\n");
                return false;
            }
            lsum += isum;
            seen += iseen;
            isum = 0.0;
            iseen = icorrect = 0;
        }
        st->steps = done;
        if (r->stop && done < r->steps_per_epoch) { /* after a whole step: the caller saves it */
            const double sums[6] = {lsum, (double)seen, (double)correct, isum, (double)iseen, (double)icorrect};
            memcpy(st->sums, sums, sizeof sums);
            cli_progress_end(&bar);
            return false;
        }
    }
    cli_progress_end(&bar);
    lsum += isum;
    seen += iseen;
    st->seconds = cli_now() - t0;
    r->time_offset += st->seconds;
    st->samples = seen;
    st->loss = seen ? lsum / (double)seen : NAN;
    st->acc = seen ? (double)correct / (double)seen : NAN;
    return true;
}

/* epoch_stats.sums as a metadata pair (static: used at once) */
static const char *const *epoch_sums(const double v[6])
{
    static char text[160];
    static const char *pair[2] = {"epoch_sums", text};
    snprintf(text, sizeof text, "%.17g,%.0f,%.0f,%.17g,%.0f,%.0f", v[0], v[1], v[2], v[3], v[4], v[5]);
    return pair;
}

static int train_loop(run *r)
{
    int64_t nparams = ag_module_num_parameters(r->m);
    char desc[200];
    tr_describe(r->ms, &r->d, desc, sizeof desc);
    printf("anygrad train: %s (%s), %lld parameters, device %s\n", r->ms->name, desc,
           (long long)nparams, ag_device_name(ag_device_default()));
    char optdesc[160];
    int at = snprintf(optdesc, sizeof optdesc, "%s lr %g", r->os->name, r->o.lr);
    if (r->o.momentum > 0.0) at += snprintf(optdesc + at, sizeof optdesc - (size_t)at, " momentum %g", r->o.momentum);
    if (r->o.weight_decay > 0.0) at += snprintf(optdesc + at, sizeof optdesc - (size_t)at, " weight decay %g", r->o.weight_decay);
    if (r->sched) at += snprintf(optdesc + at, sizeof optdesc - (size_t)at, ", %s schedule", CLI_SCHEDULES[r->sched]);
    if (r->o.warmup > 0) at += snprintf(optdesc + at, sizeof optdesc - (size_t)at, ", warm-up %lld steps", (long long)r->o.warmup);
    if (r->o.clip > 0.0) snprintf(optdesc + at, sizeof optdesc - (size_t)at, ", clip %g", r->o.clip);
    printf("  %lld training, %lld validation, %lld test %s; batch %lld; %s\n",
           (long long)ag_loader_size(r->train), (long long)(r->val ? ag_loader_size(r->val) : 0),
           (long long)(r->test ? ag_loader_size(r->test) : 0), r->csv ? "rows" : "images",
           (long long)r->o.batch, optdesc);
    fflush(stdout);
    epoch_stats st = {0};
    double best_val = -1.0, train_s = 0.0;
    int64_t best_epoch = 0, samples = 0;
    bool wrote = false; /* the log and plot; only a trained epoch writes them */
    for (int64_t e = r->start_epoch; e < r->o.epochs; e++) {
        bool ok = train_epoch(r, e, &st);
        if (!ok && r->stop) {
            /* Ctrl-C: the steps finished so far are kept, to resume after the last */
            int64_t k = st.steps;
            printf("interrupted in epoch %lld after step %lld of %lld", (long long)e + 1,
                   (long long)k, (long long)r->steps_per_epoch);
            if (r->o.save && k > 0) {
                if (cli_dist_leader() &&
                    (tr_save_checkpoint(&r->o, r->m, r->opt, e, k, &r->z, &r->d, sched_total(r),
                                        r->cos_from, r->cos_lr, 1, epoch_sums(st.sums)) != AG_OK ||
                     !write_outputs(r))) {
                    printf("\n");
                    return fail("saving the checkpoint");
                }
                printf(": saved to %s (--resume %s goes on from there)", r->o.save, r->o.save);
            } else if (r->o.save) {
                printf("; %s is as it was", r->o.save);
            } else {
                printf(": not saved (no --save)");
            }
            printf("\n");
            fflush(stdout);
            return 130;
        }
        if (!ok) return ag_last_status() == AG_OK ? 1 : fail("training");
        train_s += st.seconds;
        samples += st.samples;
        st.val_loss = st.val_acc = NAN;
        /* batch norm's running statistics: the mean of the ranks' (each saw its parts) */
        if (cli_dist_on() && ag_dist_average_buffers(r->m) != AG_OK) return fail("averaging buffers");
        if (r->val && !tr_evaluate(r->m, r->val, &st.val_loss, &st.val_acc)) return fail("validation");
        bool last = e + 1 == r->o.epochs,
             test = r->test && (last || (r->o.eval_every > 0 && (e + 1) % r->o.eval_every == 0));
        st.test_loss = st.test_acc = NAN;
        if (test && !tr_evaluate(r->m, r->test, &st.test_loss, &st.test_acc)) return fail("test");
        if (r->log.n == 0) return 1; /* train_epoch logs every epoch's end */
        cli_metric_row *row = &r->log.rows[r->log.n - 1];
        row->val_acc = st.val_acc;
        row->val_loss = st.val_loss;
        row->test_acc = st.test_acc;
        row->test_loss = st.test_loss;
        if (r->val && st.val_acc > best_val) best_val = st.val_acc, best_epoch = e + 1;
        printf("epoch %lld/%lld  loss %.4f  acc %.4f", (long long)e + 1, (long long)r->o.epochs,
               st.loss, st.acc);
        if (r->val) printf("  val loss %.4f  val acc %.4f", st.val_loss, st.val_acc);
        if (test) printf("  test acc %.4f", st.test_acc);
        printf("  lr %.3g  %.2f s  %.0f samples/s\n", row->lr, st.seconds,
               st.seconds > 0 ? (double)st.samples / st.seconds : 0.0);
        fflush(stdout);
        if (cli_dist_leader() && r->o.save && tr_save_checkpoint(&r->o, r->m, r->opt, e + 1, 0, &r->z, &r->d, sched_total(r),
                                       r->cos_from, r->cos_lr, 0, NULL) != AG_OK)
            return fail("saving the checkpoint");
        if (cli_dist_leader() && !write_outputs(r)) return 1;
        wrote = true;
        if (r->stop) { /* in the epoch's last step: the epoch was finished and saved */
            printf("interrupted at the end of epoch %lld%s%s\n", (long long)e + 1,
                   r->o.save ? ": saved to " : " (no --save: not saved)", r->o.save ? r->o.save : "");
            fflush(stdout);
            return 130;
        }
    }
    if (r->start_epoch >= r->o.epochs) {
        if (r->o.resume)
            printf("the checkpoint is at epoch %lld already (--epochs %lld): nothing to train\n",
                   (long long)r->start_epoch, (long long)r->o.epochs);
        else
            printf("--epochs 0: nothing to train\n");
        if (r->test && !tr_evaluate(r->m, r->test, &st.test_loss, &st.test_acc)) return fail("test");
    }
    printf("summary: %s, %lld epoch%s", r->ms->name, (long long)r->o.epochs, r->o.epochs == 1 ? "" : "s");
    if (samples)
        printf(" (%lld in this run: %.1f s training, %.0f samples/s)",
               (long long)(r->o.epochs - r->start_epoch), train_s,
               train_s > 0 ? (double)samples / train_s : 0.0);
    if (r->test) printf("; test loss %.4f, test accuracy %.4f", st.test_loss, st.test_acc);
    if (best_val >= 0.0) printf("; best validation accuracy %.4f (epoch %lld)", best_val, (long long)best_epoch);
    printf("; peak memory %.0f MB\n", cli_peak_mb());
    if (r->o.save && wrote) printf("checkpoint: %s\n", r->o.save);
    if (wrote && r->o.log) printf("log: %s\n", r->o.log);
    if (wrote && r->o.plot) printf("plot: %s\n", r->o.plot);
    if (!wrote && (r->o.log || r->o.plot))
        printf("nothing trained: --log and --plot files left as they were\n");
    return 0;
}

/* ---- setting up --------------------------------------------------------------- */

static int setup_data(run *r, const ag_tensor_dict *ck)
{
    ag_tensor *x, *y;
    r->csv = tr_is_csv(r->o.data);
    if (r->o.test_data && !r->csv) {
        fprintf(stderr, "anygrad train: --test-data goes with --data FILE.csv (an IDX directory "
                        "holds its own t10k files)\n");
        return 2;
    }
    /* the model's sample shape and classes: a resumed checkpoint's, else the data's */
    if (ck) r->d = tr_dims_of(ck, r->ms);
    bool ok = r->csv ? tr_load_csv(r->o.data, r->o.label_column, r->o.limit, r->ms, &r->d, &x, &y)
                     : tr_load_split(r->o.data, "train", r->o.limit, r->ms, &r->d, &x, &y);
    if (!ok) return 1;
    /* batch norm cannot train on a batch of one sample: such a last batch is
     * left out of every epoch (as its shuffle rotates, not always the same) */
    int64_t nall = ag_dim(x, 0), ntrain = nall - (int64_t)llround(r->o.val_frac * (double)nall);
    /* the smallest part a rank gets of a batch of b is b / ranks (one rank: b) */
    const int64_t ranks = cli_dist_on() ? ag_dist_size() : 1, last = ntrain % r->o.batch;
    const bool bn = strstr(r->ms->layers, "batchnorm") != NULL;
    if (bn && r->o.batch / ranks < 2) {
        fprintf(stderr, "anygrad train: --batch %lld over %lld ranks leaves a rank batches of one "
                        "sample, which batch norm cannot train on\n", (long long)r->o.batch, (long long)ranks);
        ag_release(x);
        ag_release(y);
        return 2;
    }
    bool drop = bn && ntrain > 1 && last > 0 && last / ranks < 2;
    if (drop)
        printf("note: %lld training samples leave a last batch of %lld%s, which batch norm cannot "
               "train on: it is left out of each epoch\n", (long long)ntrain, (long long)last,
               ranks > 1 ? " (a sample or none for some ranks)" : "");
    ag_loader *all = tr_make_loader_drop(x, y, r->o.batch, true, (uint64_t)r->o.seed, drop);
    if (!all) return fail("data loader");
    if (r->o.val_frac > 0.0) {
        ag_status s = ag_loader_split(all, r->o.val_frac, &r->train, &r->val);
        ag_loader_free(all);
        if (s != AG_OK) return fail("validation split");
        if (ag_loader_size(r->val) == 0) { /* a fraction that rounds to no image */
            ag_loader_free(r->val);
            r->val = NULL;
        }
    } else {
        r->train = all;
    }
    if (ag_loader_size(r->train) == 0) {
        fprintf(stderr, "anygrad train: no training samples left (--limit %lld, --val-frac %g)\n",
                (long long)r->o.limit, r->o.val_frac);
        return 2;
    }
    /* the training batch size: evaluation then reuses the training step's buffers */
    if (r->csv ? r->o.test_data != NULL : true) {
        ok = r->csv ? tr_load_csv(r->o.test_data, r->o.label_column, 0, r->ms, &r->d, &x, &y)
                    : tr_load_split(r->o.data, "t10k", 0, r->ms, &r->d, &x, &y);
        if (!ok) return 1;
        r->test = tr_make_loader(x, y, r->o.batch, false, 0);
        if (!r->test) return fail("data loader");
    }
    /* A resumed run keeps the statistics it started with. Tables are
     * normalised per feature (columns differ in scale), images over all. */
    int64_t features = r->d.c * r->d.h * r->d.w, n = r->csv ? features : 1;
    if (!(ck && tr_norm_from_meta(ck, features, &r->z))) {
        if (!tr_norm_alloc(&r->z, n)) return fail("data statistics");
        if (ag_loader_stats(r->train, r->csv, r->z.mean, r->z.sd) != AG_OK)
            return fail("data statistics");
        for (int64_t j = 0; j < n; j++) /* a constant feature stays as it is, centred */
            if (!(r->z.sd[j] > 0.0f)) r->z.sd[j] = 1.0f;
    }
    ag_loader *ls[3] = {r->train, r->val, r->test};
    for (int i = 0; i < 3; i++)
        if (ls[i] && ag_loader_set_normalize(ls[i], r->z.n, r->z.mean, r->z.sd) != AG_OK)
            return fail("normalisation");
    /* the same order on every rank; each takes its part of every batch */
    for (int i = 0; i < 3 && cli_dist_on(); i++)
        if (ls[i] && ag_loader_shard(ls[i], ag_dist_rank(), ag_dist_size()) != AG_OK)
            return fail("sharding the data");
    r->steps_per_epoch = ag_loader_num_batches(r->train);
    if (r->o.log_every < 0) r->o.log_every = r->steps_per_epoch >= 10 ? r->steps_per_epoch / 10 : 1;
    return 0;
}

/* An output that could not be written fails now, not after an epoch of
 * training: its directory must exist and be writable, and the path must not
 * be a directory. */
static bool output_ok(const char *flag, const char *path)
{
    if (!path) return true;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        fprintf(stderr, "anygrad train: --%s %s: is a directory\n", flag, path);
        return false;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "anygrad train: --%s %s: cannot write into %s: %s\n", flag, path, dir,
                strerror(errno));
        return false;
    }
    return true;
}

static int setup_device(run *r) { return cli_use_device("train", r->o.device) ? 0 : 2; }

static int setup_model(run *r, const ag_tensor_dict *ck)
{
    ag_manual_seed((uint64_t)r->o.seed);
    r->m = tr_build_model(r->ms, &r->d);
    if (!r->m) return 2; /* build_model said why */
    int np = 0;
    ag_tensor *const *params = ag_module_parameters(r->m, &np);
    ag_optim_config c = ag_optim_defaults(r->os->kind, (float)r->o.lr);
    c.momentum = (float)r->o.momentum;
    if (r->o.weight_decay >= 0.0) c.weight_decay = (float)r->o.weight_decay;
    r->opt = params ? ag_optim_new(&c, np, params) : NULL;
    if (!r->opt) return fail("optimizer");
    if (!ck) return cli_dist_on() && ag_dist_broadcast_module(r->m, r->opt, 0) != AG_OK ? fail("broadcast") : 0;
    /* A training checkpoint restores the optimizer too; a weights-only file
     * (ag_module_save, the examples' --save) starts a fresh optimizer. */
    ag_status s;
    if (ag_tensor_dict_meta(ck, "optimizer.kind")) {
        s = ag_checkpoint_load(r->o.resume, r->m, r->opt, &r->start_epoch);
    } else {
        s = ag_module_load(r->m, r->o.resume);
        printf("note: %s holds weights only; starting a new optimizer\n", r->o.resume);
    }
    if (s != AG_OK) return fail("resuming");
    if (cli_dist_on() && ag_dist_broadcast_module(r->m, r->opt, 0) != AG_OK) return fail("broadcast");
    if (r->start_epoch < 0) r->start_epoch = 0;
    const char *es = ag_tensor_dict_meta(ck, META "epoch_step");
    long long k = es ? atoll(es) : 0;
    if (k > 0 && k < r->steps_per_epoch && r->start_epoch < r->o.epochs) {
        r->skip = k;
        const char *sums = ag_tensor_dict_meta(ck, META "epoch_sums");
        if (!sums || sscanf(sums, "%lf,%lf,%lf,%lf,%lf,%lf", &r->carry[0], &r->carry[1], &r->carry[2],
                            &r->carry[3], &r->carry[4], &r->carry[5]) != 6)
            memset(r->carry, 0, sizeof r->carry); /* the epoch's line then covers the rest */
        printf("note: %s was saved at step %lld of epoch %lld: training goes on from there\n",
               r->o.resume, k, (long long)r->start_epoch + 1);
    }
    /* The cosine plan in force when the checkpoint was written: where it ends
     * and where an earlier resume bent it (without these a second resume
     * would jump back to the plain curve). */
    const char *st = ag_tensor_dict_meta(ck, META "sched_total"), *cf = ag_tensor_dict_meta(ck, META "cos_from");
    const char *e0 = ag_tensor_dict_meta(ck, META "epochs");
    long long old_epochs = e0 ? atoll(e0) : 0;
    int64_t old_total = st ? atoll(st) : old_epochs * r->steps_per_epoch;
    float old_lr = 0.0f;
    if (cf && tr_meta_float1(ck, META "cos_lr", &old_lr)) {
        r->cos_from = atoll(cf);
        r->cos_lr = old_lr;
    }
    int64_t done = ag_optim_steps(r->opt), total = sched_total(r);
    if (r->sched == CLI_SCHED_COSINE && old_total > 0 && old_total != total && done > 0) {
        /* Another end: an unfinished cosine bends from the rate it reached
         * down to 0 at the new end (no jump); a finished one (rate 0) starts
         * again as planned for the new total, which the note makes plain. */
        float now = cosine_at((float)r->o.lr, r->cos_from, r->cos_lr, old_total, done);
        if (done < old_total) {
            r->cos_from = done;
            r->cos_lr = now;
            printf("note: --epochs %lld (was %lld): the cosine schedule continues from lr %.3g "
                   "down to 0 at epoch %lld\n", (long long)r->o.epochs, old_epochs, (double)now,
                   (long long)r->o.epochs);
        } else {
            r->cos_from = 0;
            printf("note: --epochs %lld (was %lld): the cosine schedule had ended; it starts "
                   "again as planned for %lld epochs (lr %.3g now)\n", (long long)r->o.epochs,
                   old_epochs, (long long)r->o.epochs, (double)lr_at(r, done));
        }
    }
    return 0;
}

/* Rows of an earlier log up to the resumed epoch, so the log and plot cover the
 * whole run. */
static void resume_log(run *r)
{
    cli_metrics old;
    char err[512];
    if (!r->o.log || !r->o.resume || !cli_metrics_read_csv(r->o.log, &old, err, sizeof err)) return;
    for (int i = 0; i < old.n; i++)
        if (old.rows[i].epoch <= (double)r->start_epoch + (double)r->skip / (double)r->steps_per_epoch + 1e-9) {
            cli_metrics_push(&r->log, &old.rows[i]);
            if (isfinite(old.rows[i].seconds)) r->time_offset = old.rows[i].seconds;
        }
    cli_metrics_free(&old);
}

int cli_train(const cli_train_opts *o, const bool given[CLI_NTRAIN_OPTS])
{
    int drc = cli_dist_begin("train");
    if (drc) return drc;
    run r;
    memset(&r, 0, sizeof r);
    r.o = *o;
    bool set[CLI_NTRAIN_OPTS];
    memcpy(set, given, sizeof set);
    char err[512] = "";
    char *layers_text = NULL; /* --layers @FILE: the file's description, stored as text */
    if (r.o.layers && r.o.layers[0] == '@') {
        if (!(layers_text = tr_layers_file(r.o.layers + 1, err, sizeof err))) {
            fprintf(stderr, "anygrad train: %s\n", err);
            return cli_dist_end(2);
        }
        r.o.layers = layers_text;
    }
    ag_tensor_dict *ck = NULL;
    if (r.o.resume && !(ck = ag_safetensors_load(r.o.resume))) {
        fprintf(stderr, "anygrad train: --resume: %s\n", ag_last_error());
        free(layers_text);
        return cli_dist_end(1);
    }
    if (ck && !set[0] && !ag_tensor_dict_meta(ck, META "model")) {
        const model_spec *ms = tr_model_of(ck); /* a weights-only file: guess from its shapes */
        if (ms) r.o.model = ms->name, set[0] = true;
    }
    int rc = cli_train_resolve(&r.o, set, ck, err, sizeof err);
    if (rc) {
        fprintf(stderr, "anygrad train: %s\n", err);
    } else if (given[0] && r.o.layers) { /* given[0]: --model on the command line */
        fprintf(stderr, "anygrad train: --model %s and %s name two models; give one\n", r.o.model,
                ck && !given[2] ? "the checkpoint's --layers" : "--layers");
        rc = 2;
    } else {
        r.custom = tr_custom_model(r.o.layers);
        r.ms = r.o.layers ? &r.custom : tr_find_model(r.o.model);
        r.os = cli_find_optim(r.o.optimizer);
        r.sched = cli_find_schedule(r.o.schedule);
        rc = r.ms || !strcmp(r.o.model, "gpt") ? setup_device(&r) : 2; /* resolve knows the same names */
    }
    if (!rc && r.o.resume && !r.o.save) {
        r.o.save = r.o.resume; /* a resumed run keeps its epochs: back into its checkpoint */
        printf("saving to %s (--save names another file)\n", r.o.save);
    }
    const char *outs[3] = {r.o.save, r.o.log, r.o.plot}, *flags[3] = {"save", "log", "plot"};
    for (int i = 0; !rc && i < 3; i++)
        for (int j = i + 1; !rc && j < 3; j++)
            if (outs[i] && outs[j] && !strcmp(outs[i], outs[j])) {
                fprintf(stderr, "anygrad train: --%s and --%s are the same file, %s\n", flags[i],
                        flags[j], outs[i]);
                rc = 2;
            }
    if (!rc && cli_dist_leader() && !(output_ok("save", r.o.save) && output_ok("log", r.o.log) &&
                                      output_ok("plot", r.o.plot)))
        rc = 1; /* only rank 0 writes: other hosts need not have its directories */
    if (!rc && r.o.save && cli_dist_leader() && !tr_claim_save(r.o.save, err, sizeof err)) {
        fprintf(stderr, "anygrad train: --save %s: %s\n", r.o.save, err);
        rc = 1;
    }
    bool gpt = !rc && !strcmp(r.o.model, "gpt");
    if (gpt) rc = cli_gpt_train(&r.o, ck);
    if (!rc && !gpt) rc = setup_data(&r, ck);
    if (!rc && !gpt) rc = setup_model(&r, ck); /* the data decide its input and output sizes */
    if (!rc && !gpt) {
        resume_log(&r);
        tr_catch_interrupt(true);
        rc = train_loop(&r);
        tr_catch_interrupt(false);
    }
    ag_tensor_dict_free(ck);
    ag_loader_free(r.train);
    ag_loader_free(r.val);
    ag_loader_free(r.test);
    tr_norm_free(&r.z);
    ag_optim_free(r.opt);
    ag_module_free(r.m);
    cli_metrics_free(&r.log);
    free(layers_text);
    return cli_dist_end(rc);
}

