/* The safetensors header parser (src/io/json.h). Besides not crashing, checks that
 * every parsed string survives ag_json_write_string and a second parse. */
#include "fuzz_common.h"
#include "json.h"

static void roundtrip(const char *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    ag_json_write_string(f, s); /* stops at an embedded NUL, as C strings do */
    if (fclose(f) != 0) return;
    char err[128];
    ag_json *v = ag_json_parse(buf, len, err, sizeof err);
    if (!v || v->type != AG_JSON_STRING || v->len != strlen(s) || memcmp(v->str, s, v->len)) {
        fprintf(stderr, "string does not round-trip: wrote %s (%s)\n", buf, v ? "differs" : err);
        abort();
    }
    ag_json_free(v);
    free(buf);
}

static void walk(const ag_json *v, int depth)
{
    if (depth > 64) abort(); /* the parser promises a depth limit */
    switch (v->type) {
    case AG_JSON_STRING:
        if (v->str[v->len] != '\0') abort();
        roundtrip(v->str);
        break;
    case AG_JSON_OBJECT:
        for (size_t i = 0; i < v->n; i++) {
            if (v->keys[i][v->key_lens[i]] != '\0') abort();
            roundtrip(v->keys[i]);
            /* first match by key must exist for keys without NULs */
            if (strlen(v->keys[i]) == v->key_lens[i] && !ag_json_get(v, v->keys[i])) abort();
        }
        /* fall through */
    case AG_JSON_ARRAY:
        for (size_t i = 0; i < v->n; i++) walk(&v->items[i], depth + 1);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[160];
    err[0] = '\0';
    ag_json *v = ag_json_parse((const char *)data, size, err, sizeof err);
    if (!v) {
        if (!err[0]) abort(); /* failures must say why */
        return 0;
    }
    walk(v, 0);
    ag_json_free(v);
    return 0;
}
