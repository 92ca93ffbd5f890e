/* anygrad check: the conformance matrix (tests/matrix.c) on this machine's devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"
#include "cli.h"
#include "matrix.h"
#include "optable.h"

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

int cli_check(int argc, char **argv)
{
    mx_config cfg = {.model = true};
    const char *json = NULL, *docs = NULL, *devname = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            check_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quick")) {
            cfg.quick = true;
        } else if (!strcmp(a, "--self-compare")) {
            cfg.self_compare = true;
        } else if (!strcmp(a, "--no-model")) {
            cfg.model = false;
        } else if (!strcmp(a, "-v")) {
            cfg.progress = stderr;
        } else if (!strcmp(a, "--list")) {
            for (int r = 0; r < ot_row_count(); r++)
                printf("%-22s %-8s %s\n", ot_row_at(r)->name, ot_kind_name(ot_row_at(r)->kind), ot_row_at(r)->api);
            return 0;
        } else if (more && !strcmp(a, "--device")) {
            devname = argv[++i];
        } else if (more && !strcmp(a, "--op")) {
            cfg.op = argv[++i];
        } else if (more && !strcmp(a, "--json")) {
            json = argv[++i];
        } else if (more && !strcmp(a, "--docs")) {
            docs = argv[++i];
        } else {
            fprintf(stderr, "anygrad check: unknown or incomplete option '%s'\n\n", a);
            check_usage(stderr);
            return 2;
        }
    }
    if (devname) {
        cfg.device = ag_device_by_name(devname);
        if (!cfg.device) {
            fprintf(stderr, "anygrad check: %s\n", ag_last_error());
            return 2;
        }
    }
    mx_results res;
    char err[256];
    int nfail = mx_run(&cfg, &res, err, sizeof err);
    if (nfail < 0) {
        fprintf(stderr, "anygrad check: %s\n", err);
        return 2;
    }
    mx_print_table(stdout, &res, 20);
    int rc = nfail ? 1 : 0;
    if (json && mx_write_json(json, &res) != 0) {
        fprintf(stderr, "anygrad check: cannot write %s\n", json);
        rc = rc ? rc : 2;
    }
    if (docs) {
        FILE *f = fopen(docs, "w");
        int bad = !f || mx_write_docs(f, &res) != 0;
        if ((f && fclose(f) != 0) || bad) {
            fprintf(stderr, "anygrad check: cannot write %s\n", docs);
            rc = rc ? rc : 2;
        }
    }
    mx_free(&res);
    return rc;
}
