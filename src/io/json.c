/* Strict JSON reader: recursive descent over a length-delimited buffer, depth
 * limited so hostile headers cannot exhaust the stack. Numbers keep an exact
 * int64 when written as integers, because safetensors offsets must be exact. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define MAX_DEPTH 64

typedef struct parser {
    const char *s;
    size_t len, pos;
    int depth;
    char *err;
    size_t errsize;
    bool failed;
} parser;

static bool fail(parser *p, const char *fmt, ...)
{
    if (p->failed) return false;
    p->failed = true;
    int k = snprintf(p->err, p->errsize, "at byte %zu: ", p->pos);
    if (k >= 0 && (size_t)k < p->errsize) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + k, p->errsize - (size_t)k, fmt, ap);
        va_end(ap);
    }
    return false;
}

static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static bool literal(parser *p, const char *word)
{
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, word, n) != 0)
        return fail(p, "invalid literal");
    p->pos += n;
    return true;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool hex4(parser *p, unsigned *out)
{
    if (p->len - p->pos < 4) return fail(p, "truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p->s[p->pos + (size_t)k]);
        if (h < 0) return fail(p, "bad hex digit in \\u escape");
        v = v * 16 + (unsigned)h;
    }
    p->pos += 4;
    *out = v;
    return true;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Escapes only shrink or keep the length (\uXXXX is 6 bytes, at most 4 in UTF-8),
 * so the decoded string fits in the raw span. */
static bool string(parser *p, char **out, size_t *outlen)
{
    p->pos++; /* opening quote */
    size_t start = p->pos;
    while (p->pos < p->len && p->s[p->pos] != '"') {
        if (p->s[p->pos] == '\\') p->pos++;
        p->pos++;
    }
    if (p->pos >= p->len) return fail(p, "unterminated string");
    size_t end = p->pos;
    char *o = malloc(end - start + 1);
    if (!o) return fail(p, "out of memory");
    size_t n = 0;
    p->pos = start;
    while (p->pos < end) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c < 0x20) {
            free(o);
            return fail(p, "control character in string");
        }
        if (c != '\\') {
            o[n++] = (char)c;
            p->pos++;
            continue;
        }
        char e = p->s[++p->pos];
        p->pos++;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *hit = e ? strchr(from, e) : NULL;
        if (hit) {
            o[n++] = to[hit - from];
            continue;
        }
        unsigned cp, lo;
        if (e != 'u' || !hex4(p, &cp)) {
            free(o);
            return fail(p, "invalid escape in string");
        }
        if (cp >= 0xD800 && cp < 0xDC00) { /* high surrogate: a low one must follow */
            if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
                free(o);
                return fail(p, "unpaired surrogate in string");
            }
            p->pos += 2;
            if (!hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
                free(o);
                return fail(p, "unpaired surrogate in string");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            free(o);
            return fail(p, "unpaired surrogate in string");
        }
        n += put_utf8(o + n, cp);
    }
    o[n] = '\0';
    p->pos = end + 1;
    *out = o;
    *outlen = n;
    return true;
}

static bool number(parser *p, ag_json *v)
{
    size_t start = p->pos;
    bool integral = true;
    if (p->pos < p->len && p->s[p->pos] == '-') p->pos++;
    if (p->pos >= p->len) return fail(p, "truncated number");
    if (p->s[p->pos] == '0') {
        p->pos++;
    } else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9') {
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
    } else {
        return fail(p, "invalid number");
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        integral = false;
        p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == d) return fail(p, "digits expected after '.'");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integral = false;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        size_t d = p->pos;
        while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
        if (p->pos == d) return fail(p, "digits expected in exponent");
    }
    char buf[64];
    size_t n = p->pos - start;
    if (n >= sizeof buf) { /* only absurdly long numbers: keep the double */
        integral = false;
        n = sizeof buf - 1;
    }
    memcpy(buf, p->s + start, n);
    buf[n] = '\0';
    v->type = AG_JSON_NUMBER;
    v->number = strtod(buf, NULL);
    if (integral) {
        errno = 0;
        long long ll = strtoll(buf, NULL, 10);
        if (errno == 0) {
            v->is_int = true;
            v->integer = (int64_t)ll;
        }
    }
    return true;
}

static bool value(parser *p, ag_json *v);

static bool grow(parser *p, ag_json *v, size_t *cap, bool keys)
{
    if (v->n < *cap) return true;
    size_t ncap = *cap ? *cap * 2 : 4;
    ag_json *items = realloc(v->items, ncap * sizeof *items);
    if (!items) return fail(p, "out of memory");
    v->items = items;
    if (keys) {
        char **k = realloc(v->keys, ncap * sizeof *k);
        if (!k) return fail(p, "out of memory");
        v->keys = k;
        size_t *kl = realloc(v->key_lens, ncap * sizeof *kl);
        if (!kl) return fail(p, "out of memory");
        v->key_lens = kl;
    }
    *cap = ncap;
    return true;
}

/* Arrays and objects share the loop; objects read "key": before each value. */
static bool container(parser *p, ag_json *v, bool object)
{
    char close = object ? '}' : ']';
    v->type = object ? AG_JSON_OBJECT : AG_JSON_ARRAY;
    if (++p->depth > MAX_DEPTH) return fail(p, "nesting deeper than %d", MAX_DEPTH);
    p->pos++;
    skip_ws(p);
    size_t cap = 0;
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return true;
    }
    for (;;) {
        if (!grow(p, v, &cap, object)) return false;
        ag_json *item = &v->items[v->n];
        memset(item, 0, sizeof *item);
        if (object) {
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "object key expected");
            v->keys[v->n] = NULL;
            v->n++; /* counted now so the key is freed on any later failure */
            if (!string(p, &v->keys[v->n - 1], &v->key_lens[v->n - 1])) return false;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "':' expected");
            p->pos++;
        } else {
            v->n++;
        }
        if (!value(p, item)) return false;
        skip_ws(p);
        if (p->pos >= p->len) return fail(p, "unterminated %s", object ? "object" : "array");
        char c = p->s[p->pos++];
        if (c == close) break;
        if (c != ',') return fail(p, "',' or '%c' expected", close);
    }
    p->depth--;
    return true;
}

static bool value(parser *p, ag_json *v)
{
    skip_ws(p);
    if (p->pos >= p->len) return fail(p, "value expected");
    switch (p->s[p->pos]) {
    case '{': return container(p, v, true);
    case '[': return container(p, v, false);
    case '"': v->type = AG_JSON_STRING; return string(p, &v->str, &v->len);
    case 't': v->type = AG_JSON_BOOL; v->boolean = true; return literal(p, "true");
    case 'f': v->type = AG_JSON_BOOL; return literal(p, "false");
    case 'n': v->type = AG_JSON_NULL; return literal(p, "null");
    default: return number(p, v);
    }
}

static void free_inner(ag_json *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free_inner(&v->items[i]);
        if (v->keys) free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->key_lens);
    free(v->str);
}

ag_json *ag_json_parse(const char *text, size_t len, char *err, size_t errsize)
{
    parser p = {.s = text, .len = len, .err = err, .errsize = errsize};
    ag_json *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    if (value(&p, v)) {
        skip_ws(&p);
        if (p.pos == p.len) return v;
        fail(&p, "trailing characters after the value");
    }
    ag_json_free(v);
    return NULL;
}

void ag_json_free(ag_json *v)
{
    if (!v) return;
    free_inner(v);
    free(v);
}

const ag_json *ag_json_get(const ag_json *obj, const char *key)
{
    if (!obj || obj->type != AG_JSON_OBJECT) return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < obj->n; i++)
        if (obj->key_lens[i] == kl && memcmp(obj->keys[i], key, kl) == 0) return &obj->items[i];
    return NULL;
}

void ag_json_write_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc(c, f);
        } else if (c < 0x20) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc(c, f);
        }
    }
    fputc('"', f);
}
