/* anygrad check: the conformance matrix (conformance/matrix.c) on this machine's devices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"
#include "cli.h"
#include "matrix.h"
#include "optable.h"

int cli_check_list(void)
{
    for (int r = 0; r < ot_row_count(); r++)
        printf("%-22s %-8s %s\n", ot_row_at(r)->name, ot_kind_name(ot_row_at(r)->kind), ot_row_at(r)->api);
    return 0;
}

int cli_check(const cli_check_opts *o)
{
    mx_config cfg = {.model = !o->no_model, .quick = o->quick, .self_compare = o->self_compare,
                     .op = o->op, .progress = o->verbose ? stderr : NULL};
    const char *json = o->json, *docs = o->docs, *devname = o->device;
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
