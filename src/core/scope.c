/* Scopes: while one is open it owns every tensor created, so a training step's
 * temporaries go away with one ag_scope_end(). */
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* Each thread starts on inline arrays and moves to the heap only past them:
 * a training step's outermost scope then opens and closes without malloc
 * (which cost a quarter of a small op's host time, in malloc_consolidate). */
#define OWNED_INLINE 256
#define MARKS_INLINE 32
static _Thread_local ag_tensor *owned_inline[OWNED_INLINE];
static _Thread_local size_t marks_inline[MARKS_INLINE];
static _Thread_local ag_tensor **owned;
static _Thread_local size_t nowned, cap_owned;
static _Thread_local size_t *marks;
static _Thread_local size_t nmarks, cap_marks;

static bool grow(void **p, size_t *cap, size_t need, size_t elem, void *inline_buf,
                 size_t inline_cap)
{
    if (!*p) {
        *p = inline_buf;
        *cap = inline_cap;
    }
    if (need <= *cap) return true;
    size_t ncap = *cap * 2;
    while (ncap < need) ncap *= 2;
    void *np = *p == inline_buf ? malloc(ncap * elem) : realloc(*p, ncap * elem);
    if (!np) return false;
    if (*p == inline_buf) memcpy(np, inline_buf, *cap * elem);
    *p = np;
    *cap = ncap;
    return true;
}

ag_tensor *ag__own(ag_tensor *t)
{
    if (!t || nmarks == 0) return t;
    if (!grow((void **)&owned, &cap_owned, nowned + 1, sizeof *owned, owned_inline, OWNED_INLINE)) {
        ag_release(t);
        ag_set_error(AG_ERR_OOM, "out of host memory recording a tensor in the scope");
        return NULL;
    }
    owned[nowned++] = t;
    return t;
}

void ag_scope_begin(void)
{
    /* On failure the scope is not opened and tensors go to the outer owner; the
     * matching ag_scope_end then closes the outer scope early, which frees too
     * soon but never twice. Host malloc failure for 8 bytes is the only cause. */
    if (!grow((void **)&marks, &cap_marks, nmarks + 1, sizeof *marks, marks_inline, MARKS_INLINE)) {
        ag_set_error(AG_ERR_OOM, "out of host memory opening a scope");
        return;
    }
    marks[nmarks++] = nowned;
}

void ag_scope_end(void)
{
    if (nmarks == 0) return;
    size_t mark = marks[--nmarks];
    while (nowned > mark) ag_release(owned[--nowned]);
    if (nmarks == 0) { /* back to the inline arrays: nothing left on the heap */
        if (owned != owned_inline) free(owned);
        if (marks != marks_inline) free(marks);
        owned = NULL;
        marks = NULL;
        cap_owned = cap_marks = 0;
    }
}

ag_tensor *ag_scope_return(ag_tensor *t)
{
    /* NULL (an op failed) is passed on silently; a released handle is not. */
    if (t && !ag__alive(t)) t = (ag__bad_handle("ag_scope_return", t), NULL);
    if (nmarks == 0) return t; /* no scope to end: the caller already owns t */
    ag_retain(t);
    ag_scope_end();
    return ag__own(t);
}

int ag_scope_depth(void) { return (int)nmarks; }
