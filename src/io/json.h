/* A small strict JSON (RFC 8259) reader and string writer for the safetensors
 * header. Internal. */
#ifndef AG_JSON_H
#define AG_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum ag_json_type {
    AG_JSON_NULL, AG_JSON_BOOL, AG_JSON_NUMBER, AG_JSON_STRING, AG_JSON_ARRAY, AG_JSON_OBJECT
} ag_json_type;

typedef struct ag_json {
    ag_json_type type;
    bool boolean;
    bool is_int;          /* number written without fraction or exponent, fits int64 */
    int64_t integer;
    double number;
    char *str;            /* strings: UTF-8, NUL-terminated (may hold NULs: use len) */
    size_t len;
    size_t n;             /* arrays and objects */
    struct ag_json *items;
    char **keys;          /* objects: keys[i] names items[i] */
    size_t *key_lens;
} ag_json;

/* Parses exactly one value (surrounding whitespace allowed). On failure returns
 * NULL and writes a message with the byte offset into err. */
ag_json *ag_json_parse(const char *text, size_t len, char *err, size_t errsize);
void ag_json_free(ag_json *v);
/* Member of an object by key (first match), or NULL. */
const ag_json *ag_json_get(const ag_json *obj, const char *key);
/* Writes s as a JSON string literal (quotes included). */
void ag_json_write_string(FILE *f, const char *s);

#endif
