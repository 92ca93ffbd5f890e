/* The conformance matrix (matrix.c) on the default device, and the checks that
 * keep the op table complete: a row for every value of the op enums, and every
 * tensor-returning function of anygrad.h either in a row's api or on the
 * documented list of non-ops (optable.c). The quick matrix runs here (CI);
 * AG_CONFORMANCE_FULL=1 runs the full one (6 seeds instead of 3). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "matrix.h"
#include "optable.h"
#include "suites.h"

#ifndef AG_SOURCE_ROOT
#define AG_SOURCE_ROOT "."
#endif

/* rows of a kind carrying enum value op: must be exactly one per value */
static void check_enum(ot_kind kind, int count, const char *what)
{
    int seen[64] = {0}, nrows = 0;
    ck_assert_int_le(count, 64);
    for (int r = 0; r < ot_row_count(); r++) {
        const ot_row *row = ot_row_at(r);
        if (row->kind != kind || row->op < 0) continue;
        nrows++;
        ck_assert_msg(row->op < count, "row %s: %s value %d out of range", row->name, what, row->op);
        seen[row->op]++;
    }
    for (int v = 0; v < count; v++)
        ck_assert_msg(seen[v] == 1, "%s value %d has %d rows in the op table (conformance/optable.c), want 1",
                      what, v, seen[v]);
    ck_assert_msg(nrows == count, "%d %s rows, %s has %d values", nrows, what, what, count);
}

START_TEST(t_row_counts)
{
    check_enum(OT_UNARY, AG_UNARY_COUNT, "ag_unary_op");
    check_enum(OT_BINARY, AG_BINARY_COUNT, "ag_binary_op");
    check_enum(OT_REDUCE, AG_REDUCE_COUNT, "ag_reduce_op");
    for (int r = 0; r < ot_row_count(); r++) {
        const ot_row *row = ot_row_at(r);
        ck_assert_msg(row->build && (row->ref || row->check), "row %s: no builder or reference", row->name);
        ck_assert_msg(row->nfam >= 1, "row %s has no shape family", row->name);
        bool known = false;
        for (int i = 0; h_tol_class_at(i); i++) known |= !strcmp(h_tol_class_at(i)->name, row->tol);
        ck_assert_msg(known, "row %s: unknown tolerance class '%s'", row->name, row->tol);
        ck_assert_msg(ot_row_find(row->name) == row, "row name %s is not unique", row->name);
        for (int f = 0; f < row->nfam; f++)
            ck_assert_msg(row->fam[f].n >= 1 && row->fam[f].n <= OT_MAX_IN, "row %s family %s: %d inputs",
                          row->name, row->fam[f].name, row->fam[f].n);
    }
}
END_TEST

static bool word_in(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ' ') && (p[n] == '\0' || p[n] == ' ')) return true;
    return false;
}

/* Every `AG_API ag_tensor *ag_name(` declared in anygrad.h before the autograd section
 * (the tensor ops; modules, data loading and checkpoints come after it) has a row
 * or a reason. */
START_TEST(t_api_coverage)
{
    const char *path = AG_SOURCE_ROOT "/include/anygrad.h";
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    char line[512], missing[2048] = "";
    int nfound = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "/* ---- autograd")) break;
        const char *decl = strncmp(line, "AG_API ", 7) == 0 ? line + 7 : line;
        const char *p = strstr(decl, "ag_tensor *ag_");
        if (!p || strncmp(decl, "ag_tensor", 9) != 0) continue;
        p += strlen("ag_tensor *");
        char name[64];
        int k = 0;
        while ((isalnum((unsigned char)p[k]) || p[k] == '_') && k < 63) name[k] = p[k], k++;
        name[k] = '\0';
        if (p[k] != '(') continue;
        nfound++;
        bool covered = false;
        for (int r = 0; r < ot_row_count() && !covered; r++) covered = word_in(ot_row_at(r)->api, name);
        for (int i = 0; ot_not_ops[i] && !covered; i += 2) covered = !strcmp(ot_not_ops[i], name);
        if (!covered && strlen(missing) + strlen(name) + 2 < sizeof missing) strcat(strcat(missing, " "), name);
    }
    fclose(f);
    ck_assert_msg(nfound > 50, "found only %d op declarations in %s", nfound, path);
    ck_assert_msg(missing[0] == '\0', "ops of anygrad.h without a row in conformance/optable.c:%s", missing);
}
END_TEST

/* Quick matrix, plus the same device with AG_NUM_THREADS=1 so the cross-device
 * comparison runs too, plus the MLP agreement and determinism check. */
START_TEST(t_matrix)
{
    const char *full = getenv("AG_CONFORMANCE_FULL");
    mx_config cfg = {.quick = !(full && *full && strcmp(full, "0")), .device = ag_device_default(),
                     .self_compare = true, .model = true};
    mx_results res;
    char err[256];
    int nfail = mx_run(&cfg, &res, err, sizeof err);
    ck_assert_msg(nfail >= 0, "matrix did not run: %s", err);
    if (nfail) mx_print_table(stdout, &res, 30);
    else mx_print_summary(stdout, &res);
    char first[1024] = "";
    for (int i = 0; i < res.ncases; i++)
        if (!res.cases[i].ok) {
            snprintf(first, sizeof first, "%s", res.cases[i].msg ? res.cases[i].msg : "?");
            break;
        }
    if (!first[0] && res.model_fail)
        for (int t = 0; t < res.ntargets; t++)
            if (!res.model[t].ok) snprintf(first, sizeof first, "MLP on %s: %s", res.targets[t].label, res.model[t].msg);
    int cases = res.ncases, failed = res.nfail;
    mx_free(&res);
    ck_assert_msg(nfail == 0, "conformance matrix: %d of %d cases failed; first: %s", failed, cases, first);
}
END_TEST

Suite *suite_conformance(void)
{
    Suite *s = suite_create("conformance");
    TCase *tc = h_tcase_create("optable");
    tcase_add_test(tc, t_row_counts);
    tcase_add_test(tc, t_api_coverage);
    suite_add_tcase(s, tc);
    TCase *m = h_tcase_create("matrix");
    tcase_set_timeout(m, 600); /* the whole matrix is one test */
    tcase_add_test(m, t_matrix);
    suite_add_tcase(s, m);
    return s;
}
