/* st-diff A B [prefix]: the largest absolute difference between the tensors two
 * safetensors files share (those whose names start with prefix, default all),
 * for the shell tests that compare training runs (tests/mpi.sh). Prints the
 * difference and the tensor it was found in; exit 1 when the files cannot be
 * read or share no tensor of the same shape. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"

static float *values(ag_tensor *t)
{
    size_t n = (size_t)ag_numel(t);
    float *v = malloc((n ? n : 1) * sizeof *v);
    if (v && ag_to_host(t, v, n * sizeof *v) != AG_OK) {
        free(v);
        v = NULL;
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: st-diff A.safetensors B.safetensors [name-prefix]\n");
        return 2;
    }
    const char *prefix = argc > 3 ? argv[3] : "";
    ag_tensor_dict *a = ag_safetensors_load(argv[1]), *b = a ? ag_safetensors_load(argv[2]) : NULL;
    if (!a || !b) {
        fprintf(stderr, "st-diff: %s\n", ag_last_error());
        return 1;
    }
    double worst = 0.0;
    const char *where = "";
    int compared = 0;
    for (int i = 0; i < a->n; i++) {
        ag_tensor *ta = a->tensors[i], *tb = ag_tensor_dict_get(b, a->names[i]);
        if (strncmp(a->names[i], prefix, strlen(prefix)) || !tb || ag_dtype_of(ta) != AG_F32 ||
            ag_numel(ta) != ag_numel(tb))
            continue;
        float *va = values(ta), *vb = values(tb);
        for (int64_t j = 0; va && vb && j < ag_numel(ta); j++) {
            double d = fabs((double)va[j] - (double)vb[j]);
            if (!(d <= worst)) worst = d, where = a->names[i];
        }
        free(va);
        free(vb);
        compared++;
    }
    printf("%.3g %s %d\n", worst, where, compared);
    ag_tensor_dict_free(a);
    ag_tensor_dict_free(b);
    return compared ? 0 : 1;
}
