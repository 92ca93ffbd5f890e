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
typedef struct scope_state {
    ag_tensor **owned;
    size_t nowned, cap_owned;
    size_t *marks;
    size_t nmarks, cap_marks;
    ag_tensor *owned_inline[OWNED_INLINE];
    size_t marks_inline[MARKS_INLINE];
} scope_state;
static _Thread_local scope_state state;

/* The thread's state, its address computed once a call (AG_TLS_ONCE). */
static inline scope_state *st(void)
{
    scope_state *S = &state;
    AG_TLS_ONCE(S);
    return S;
}

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
    scope_state *S = st();
    if (!t || S->nmarks == 0) return t;
    if (!grow((void **)&S->owned, &S->cap_owned, S->nowned + 1, sizeof *S->owned, S->owned_inline,
              OWNED_INLINE)) {
        ag_release(t);
        ag_set_error(AG_ERR_OOM, "out of host memory recording a tensor in the scope");
        return NULL;
    }
    S->owned[S->nowned++] = t;
    return t;
}

void ag_scope_begin(void)
{
    /* On failure the scope is not opened and tensors go to the outer owner; the
     * matching ag_scope_end then closes the outer scope early, which frees too
     * soon but never twice. Host malloc failure for 8 bytes is the only cause. */
    scope_state *S = st();
    if (!grow((void **)&S->marks, &S->cap_marks, S->nmarks + 1, sizeof *S->marks, S->marks_inline,
              MARKS_INLINE)) {
        ag_set_error(AG_ERR_OOM, "out of host memory opening a scope");
        return;
    }
    S->marks[S->nmarks++] = S->nowned;
}

void ag_scope_end(void)
{
    scope_state *S = st();
    if (S->nmarks == 0) return;
    size_t mark = S->marks[--S->nmarks];
    while (S->nowned > mark) ag_release(S->owned[--S->nowned]);
    if (S->nmarks == 0) { /* back to the inline arrays: nothing left on the heap */
        if (S->owned != S->owned_inline) free(S->owned);
        if (S->marks != S->marks_inline) free(S->marks);
        S->owned = NULL;
        S->marks = NULL;
        S->cap_owned = S->cap_marks = 0;
    }
}

ag_tensor *ag_scope_return(ag_tensor *t)
{
    /* NULL (an op failed) is passed on silently; a released handle is not. */
    if (t && !ag__alive(t)) t = (ag__bad_handle("ag_scope_return", t), NULL);
    if (st()->nmarks == 0) return t; /* no scope to end: the caller already owns t */
    ag_retain(t);
    ag_scope_end();
    return ag__own(t);
}

int ag_scope_depth(void) { return (int)st()->nmarks; }
