/* The training metrics log: kept in memory, written and read as CSV, drawn as
 * an SVG (two panels: loss, and accuracy on training/validation/test data, both
 * against epochs), and the `anygrad plot` subcommand that redraws a saved log. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* ---- rows and columns ------------------------------------------------------ */

bool cli_metrics_push(cli_metrics *m, const cli_metric_row *r)
{
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        cli_metric_row *nr = realloc(m->rows, (size_t)cap * sizeof *nr);
        if (!nr) return false;
        m->rows = nr;
        m->cap = cap;
    }
    m->rows[m->n++] = *r;
    return true;
}

void cli_metrics_free(cli_metrics *m)
{
    free(m->rows);
    memset(m, 0, sizeof *m);
}

/* The CSV columns, in file order, with the precision each is written at. */
typedef enum col_kind { COL_REAL, COL_STEP } col_kind;
static const struct column {
    const char *name;
    size_t offset;
    col_kind kind;
    const char *fmt;
} COLS[] = {
    {"epoch", offsetof(cli_metric_row, epoch), COL_REAL, "%.4f"},
    {"step", offsetof(cli_metric_row, step), COL_STEP, NULL},
    {"loss", offsetof(cli_metric_row, loss), COL_REAL, "%.6f"},
    {"train_acc", offsetof(cli_metric_row, train_acc), COL_REAL, "%.6f"},
    {"val_acc", offsetof(cli_metric_row, val_acc), COL_REAL, "%.6f"},
    {"test_acc", offsetof(cli_metric_row, test_acc), COL_REAL, "%.6f"},
    {"lr", offsetof(cli_metric_row, lr), COL_REAL, "%.6g"},
    {"seconds", offsetof(cli_metric_row, seconds), COL_REAL, "%.4f"},
    {"val_loss", offsetof(cli_metric_row, val_loss), COL_REAL, "%.6f"},
    {"test_loss", offsetof(cli_metric_row, test_loss), COL_REAL, "%.6f"},
};
#define NCOLS ((int)(sizeof COLS / sizeof COLS[0]))

static double *real_at(cli_metric_row *r, int c) { return (double *)((char *)r + COLS[c].offset); }
static double real_of(const cli_metric_row *r, int c)
{
    return *(const double *)((const char *)r + COLS[c].offset);
}

/* ---- atomic text files ---------------------------------------------------- */

bool cli_out_open(cli_outfile *o, const char *path, char *err, size_t errsz)
{
    o->path = path;
    if (snprintf(o->tmp, sizeof o->tmp, "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof o->tmp) {
        snprintf(err, errsz, "%s: path too long", path);
        return false;
    }
    o->f = fopen(o->tmp, "w");
    if (!o->f) snprintf(err, errsz, "cannot write %s: %s", o->tmp, strerror(errno));
    return o->f != NULL;
}

/* Readers never see a half-written log or plot: write aside, then rename. */
bool cli_out_close(cli_outfile *o, char *err, size_t errsz)
{
    bool ok = !ferror(o->f);
    ok = (fclose(o->f) == 0) && ok;
    if (ok && rename(o->tmp, o->path) != 0) ok = false;
    if (!ok) {
        snprintf(err, errsz, "cannot write %s: %s", o->path, strerror(errno ? errno : EIO));
        remove(o->tmp);
    }
    return ok;
}

/* ---- CSV ------------------------------------------------------------------ */

bool cli_metrics_write_csv(const cli_metrics *m, const char *path, char *err, size_t errsz)
{
    cli_outfile o;
    if (!cli_out_open(&o, path, err, errsz)) return false;
    for (int c = 0; c < NCOLS; c++) fprintf(o.f, "%s%s", c ? "," : "", COLS[c].name);
    fputc('\n', o.f);
    for (int i = 0; i < m->n; i++) {
        for (int c = 0; c < NCOLS; c++) {
            if (c) fputc(',', o.f);
            if (COLS[c].kind == COL_STEP)
                fprintf(o.f, "%lld", (long long)m->rows[i].step);
            else if (!isnan(real_of(&m->rows[i], c)))
                fprintf(o.f, COLS[c].fmt, real_of(&m->rows[i], c));
        }
        fputc('\n', o.f);
    }
    return cli_out_close(&o, err, errsz);
}

/* Splits line in place on commas into fields[0..max-1]; returns the field
 * count, or max + 1 (fields[max] unset) when the line has more than max. */
static int split_fields(char *line, char **fields, int max)
{
    line[strcspn(line, "\r\n")] = '\0';
    int n = 0;
    for (char *s = line;; s++) {
        if (n == max) return max + 1;
        fields[n++] = s;
        s = strchr(s, ',');
        if (!s) return n;
        *s = '\0';
    }
}

bool cli_metrics_read_csv(const char *path, cli_metrics *m, char *err, size_t errsz)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(errno));
        return false;
    }
    char line[1024];
    char *fields[NCOLS + 1] = {0}; /* split_fields sets only the first n: gcc cannot see that */
    int map[NCOLS + 1]; /* file column -> COLS index or -1 (ignored) */
    int nf = 0;
    bool ok = fgets(line, sizeof line, f) != NULL;
    if (!ok) snprintf(err, errsz, "%s: empty file, expected a CSV header", path);
    if (ok) {
        nf = split_fields(line, fields, NCOLS);
        bool have_epoch = false;
        for (int k = 0; k < nf && k < NCOLS; k++) {
            map[k] = -1;
            for (int c = 0; c < NCOLS; c++)
                if (!strcmp(fields[k], COLS[c].name)) map[k] = c;
            have_epoch |= map[k] == 0;
        }
        ok = nf <= NCOLS && have_epoch;
        if (!ok)
            snprintf(err, errsz, "%s: not a metrics log (header needs 'epoch' and at most %d of: "
                                 "epoch,step,loss,train_acc,val_acc,test_acc,lr,seconds,val_loss,test_loss)",
                     path, NCOLS);
    }
    for (int ln = 2; ok && fgets(line, sizeof line, f); ln++) {
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errsz, "%s line %d: too long", path, ln);
            ok = false;
            break;
        }
        if (line[strspn(line, " \t\r\n")] == '\0') continue;
        cli_metric_row r;
        for (int c = 0; c < NCOLS; c++)
            if (COLS[c].kind == COL_REAL) *real_at(&r, c) = NAN;
        r.step = 0;
        int got = split_fields(line, fields, NCOLS);
        if (got != nf) {
            snprintf(err, errsz, "%s line %d: %d fields, the header has %d", path, ln, got, nf);
            ok = false;
            break;
        }
        for (int k = 0; k < nf && ok; k++) {
            if (map[k] < 0 || !*fields[k]) continue;
            char *end;
            errno = 0;
            double v = strtod(fields[k], &end);
            if (*end || errno) {
                snprintf(err, errsz, "%s line %d: '%s' is not a number (%s)", path, ln, fields[k],
                         COLS[map[k]].name);
                ok = false;
            } else if (COLS[map[k]].kind == COL_STEP) {
                r.step = (int64_t)v;
            } else {
                *real_at(&r, map[k]) = v;
            }
        }
        if (ok && isnan(r.epoch)) {
            snprintf(err, errsz, "%s line %d: no epoch", path, ln);
            ok = false;
        }
        if (ok && !cli_metrics_push(m, &r)) {
            snprintf(err, errsz, "%s: out of memory", path);
            ok = false;
        }
    }
    fclose(f);
    if (!ok) cli_metrics_free(m);
    return ok;
}

/* ---- SVG ------------------------------------------------------------------ */

#define PANEL_W 410 /* plot area of one panel */
#define PANEL_H 300
#define PANEL_TOP 60
#define PANEL_LEFT0 70 /* room for tick labels and the axis label */
#define PANEL_GAP 90
#define SVG_W (PANEL_LEFT0 + 2 * PANEL_W + PANEL_GAP + 20)
#define SVG_H 420

typedef struct axis {
    double lo, hi, step;
} axis;

/* A 1-2-5 tick step giving about target intervals over range. */
static double nice_step(double range, int target)
{
    double raw = range / target, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

#define MAX_TICKS 40 /* nice_step gives at most about 1.5 * target + 2 */

static axis make_axis(double lo, double hi, int target, bool from_zero)
{
    if (!(lo <= hi)) lo = 0.0, hi = 1.0; /* no data */
    if (from_zero && lo > 0.0) lo = 0.0;
    /* A range too narrow for distinct ticks at this magnitude (a step below
     * the values' precision would never advance) is widened around the data. */
    double mag = fmax(fabs(lo), fabs(hi));
    if (hi - lo < 1e-12 || hi - lo < mag * 1e-9) {
        double pad = mag > 1e-12 ? mag * 0.05 : 0.5;
        lo -= pad;
        hi += pad;
    }
    axis a;
    a.step = nice_step(hi - lo, target);
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    if (!(a.step > mag * DBL_EPSILON * 64) || !isfinite(a.lo) || !isfinite(a.hi) ||
        !(a.hi > a.lo)) {
        /* Still degenerate (values near the double range's ends): span the data
         * with no ticks rather than loop or divide by zero. */
        a.lo = lo, a.hi = hi > lo ? hi : lo + 1.0, a.step = INFINITY;
    }
    return a;
}

/* Ticks at lo + t * step for t = 0 .. n - 1 (an index, so rounding never stalls). */
static int tick_count(axis a)
{
    if (!isfinite(a.step)) return 0;
    double n = floor((a.hi - a.lo) / a.step + 1e-6);
    return n >= 0.0 && n < MAX_TICKS ? (int)n + 1 : 0;
}

static int tick_decimals(double step)
{
    if (!(step > 0.0 && isfinite(step))) return 0;
    int d = (int)ceil(-log10(step) - 1e-9);
    return d < 0 ? 0 : d > 6 ? 6 : d;
}

static void svg_text_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

typedef struct series {
    const char *name, *color;
    int column; /* index into COLS */
} series;

typedef struct panel {
    const char *title, *ylabel;
    const series *s;
    int ns;
    bool from_zero;
    bool legend_low;  /* rising curves leave the bottom free */
} panel;

static const series LOSS_SERIES[] = {
    {"training", "#1f77b4", 2}, {"validation", "#ff7f0e", 8}, {"test", "#2ca02c", 9}};
static const series ACC_SERIES[] = {
    {"training", "#1f77b4", 3}, {"validation", "#ff7f0e", 4}, {"test", "#2ca02c", 5}};
static const panel PANELS[] = {
    {"Loss", "cross-entropy", LOSS_SERIES, 3, true, false},
    {"Accuracy", "fraction correct", ACC_SERIES, 3, false, true},
};

static void draw_panel(FILE *f, const cli_metrics *m, const panel *p, double x0, axis ax)
{
    double ymin = INFINITY, ymax = -INFINITY;
    for (int k = 0; k < p->ns; k++)
        for (int i = 0; i < m->n; i++) {
            double v = real_of(&m->rows[i], p->s[k].column);
            if (isfinite(v)) ymin = fmin(ymin, v), ymax = fmax(ymax, v);
        }
    axis ay = make_axis(ymin, ymax, 6, p->from_zero);
    double y0 = PANEL_TOP + PANEL_H;
#define PX(x) (x0 + ((x) - ax.lo) / (ax.hi - ax.lo) * PANEL_W)
#define PY(y) (y0 - ((y) - ay.lo) / (ay.hi - ay.lo) * PANEL_H)
    fprintf(f, "<g>\n<text x=\"%.1f\" y=\"%d\" class=\"ptitle\">%s</text>\n", x0 + PANEL_W / 2.0,
            PANEL_TOP - 12, p->title);
    int dy = tick_decimals(ay.step), dx = tick_decimals(ax.step);
    for (int t = 0, nt = tick_count(ay); t < nt; t++) {
        double y = ay.lo + t * ay.step;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n", x0,
                PY(y), x0 + PANEL_W, PY(y));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"ytick\">%.*f</text>\n", x0 - 6, PY(y) + 4,
                dy, fabs(y) < ay.step * 1e-6 ? 0.0 : y);
    }
    for (int t = 0, nt = tick_count(ax); t < nt; t++) {
        double x = ax.lo + t * ax.step;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>\n", PX(x),
                y0, PX(x), (double)PANEL_TOP);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xtick\">%.*f</text>\n", PX(x), y0 + 18, dx,
                x);
    }
    fprintf(f, "<rect x=\"%.1f\" y=\"%d\" width=\"%d\" height=\"%d\" class=\"frame\"/>\n", x0,
            PANEL_TOP, PANEL_W, PANEL_H);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xlabel\">epoch</text>\n", x0 + PANEL_W / 2.0,
            y0 + 40);
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" class=\"ylabel\" transform=\"rotate(-90 %.1f %.1f)\">%s"
            "</text>\n",
            x0 - 50, PANEL_TOP + PANEL_H / 2.0, x0 - 50, PANEL_TOP + PANEL_H / 2.0, p->ylabel);
    int shown = 0, nshow = 0;
    for (int k = 0; k < p->ns; k++)
        for (int i = 0; i < m->n; i++)
            if (isfinite(real_of(&m->rows[i], p->s[k].column))) {
                nshow++;
                break;
            }
    double box_top = p->legend_low ? PANEL_TOP + PANEL_H - 12 - 18 * nshow : PANEL_TOP + 6;
    for (int k = 0; k < p->ns; k++) {
        const series *s = &p->s[k];
        int npts = 0;
        for (int i = 0; i < m->n; i++) npts += isfinite(real_of(&m->rows[i], s->column));
        if (!npts) continue;
        fprintf(f, "<polyline class=\"curve\" stroke=\"%s\" points=\"", s->color);
        for (int i = 0; i < m->n; i++) {
            double v = real_of(&m->rows[i], s->column);
            if (isfinite(v)) fprintf(f, "%.1f,%.1f ", PX(m->rows[i].epoch), PY(v));
        }
        fputs("\"/>\n", f);
        /* Sparse series (per-epoch validation and test) get visible points. */
        if (npts <= 60)
            for (int i = 0; i < m->n; i++) {
                double v = real_of(&m->rows[i], s->column);
                if (isfinite(v))
                    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                            PX(m->rows[i].epoch), PY(v), s->color);
            }
        double lx = x0 + PANEL_W - 130, ly = box_top + 6 + 18 * shown;
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                "stroke-width=\"2.5\"/>\n<text x=\"%.1f\" y=\"%.1f\" class=\"legend\">%s</text>\n",
                lx, ly + 6, lx + 22, ly + 6, s->color, lx + 28, ly + 10, s->name);
        shown++;
    }
    if (shown)
        fprintf(f,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"124\" height=\"%d\" class=\"legendbox\"/>\n",
                x0 + PANEL_W - 136, box_top, 18 * shown + 6);
    fputs("</g>\n", f);
#undef PX
#undef PY
}

bool cli_plot_svg(const cli_metrics *m, const char *path, const char *title, char *err,
                  size_t errsz)
{
    if (m->n == 0) {
        snprintf(err, errsz, "plot %s: no metrics to draw", path);
        return false;
    }
    double emin = INFINITY, emax = -INFINITY;
    for (int i = 0; i < m->n; i++)
        emin = fmin(emin, m->rows[i].epoch), emax = fmax(emax, m->rows[i].epoch);
    axis ax = make_axis(emin, emax, 8, true);
    cli_outfile o;
    if (!cli_out_open(&o, path, err, errsz)) return false;
    FILE *f = o.f;
    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
            "<style>\n"
            ".grid{stroke:#e0e0e0;stroke-width:1}\n"
            ".frame{fill:none;stroke:#333;stroke-width:1}\n"
            ".curve{fill:none;stroke-width:2;stroke-linejoin:round}\n"
            ".ytick{font-size:11px;text-anchor:end;fill:#333}\n"
            ".xtick{font-size:11px;text-anchor:middle;fill:#333}\n"
            ".xlabel,.ylabel{font-size:12px;text-anchor:middle;fill:#333}\n"
            ".ptitle{font-size:14px;font-weight:bold;text-anchor:middle}\n"
            ".title{font-size:16px;text-anchor:middle}\n"
            ".legend{font-size:12px;fill:#222}\n"
            ".legendbox{fill:none;stroke:#bbb}\n"
            "</style>\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
            "<text x=\"%d\" y=\"24\" class=\"title\">",
            SVG_W, SVG_H, SVG_W, SVG_H, SVG_W / 2);
    svg_text_escaped(f, title && *title ? title : "anygrad training");
    fputs("</text>\n", f);
    for (int k = 0; k < 2; k++)
        draw_panel(f, m, &PANELS[k], PANEL_LEFT0 + k * (PANEL_W + PANEL_GAP), ax);
    fputs("</svg>\n", f);
    return cli_out_close(&o, err, errsz);
}

/* ---- anygrad plot ---------------------------------------------------------- */

int cli_plot(const cli_plot_opts *o)
{
    const char *in = o->in, *out = o->out, *title = o->title;
    cli_metrics m;
    char err[512];
    if (!cli_metrics_read_csv(in, &m, err, sizeof err)) {
        fprintf(stderr, "anygrad plot: %s\n", err);
        return 1;
    }
    bool ok = cli_plot_svg(&m, out, title ? title : in, err, sizeof err);
    cli_metrics_free(&m);
    if (!ok) {
        fprintf(stderr, "anygrad plot: %s\n", err);
        return 1;
    }
    printf("wrote %s\n", out);
    return 0;
}
