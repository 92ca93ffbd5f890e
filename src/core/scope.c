/* Scopes: while one is open it owns every tensor created, so a training step's
 * temporaries go away with one ag_scope_end(). */
#include <stdlib.h>

#include "core.h"

static _Thread_local ag_tensor **owned;
static _Thread_local size_t nowned, cap_owned;
static _Thread_local size_t *marks;
static _Thread_local size_t nmarks, cap_marks;

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t ncap = *cap ? *cap * 2 : 256;
    while (ncap < need) ncap *= 2;
    void *np = realloc(*p, ncap * elem);
    if (!np) return false;
    *p = np;
    *cap = ncap;
    return true;
}

ag_tensor *ag__own(ag_tensor *t)
{
    if (!t || nmarks == 0) return t;
    if (!grow((void **)&owned, &cap_owned, nowned + 1, sizeof *owned)) {
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
    if (!grow((void **)&marks, &cap_marks, nmarks + 1, sizeof *marks)) {
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
    if (nmarks == 0) {
        free(owned);
        free(marks);
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
