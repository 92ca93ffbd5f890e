/* Per-thread reuse of the small host structs every op allocates (a tensor's
 * storage record, an autograd node): a training step makes and drops them by
 * the thousand, and calloc + free cost ~8% of a small op's host time. Each
 * thread keeps up to REUSE_MAX blocks of each kind; blocks freed by another
 * thread than the one that made them simply join that thread's lists. What a
 * thread holds is freed when it exits. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define REUSE_MAX 256

typedef struct block {
    struct block *next;
} block;

typedef struct reuse_cache {
    block *head[AG_REUSE_KINDS];
    int n[AG_REUSE_KINDS];
    bool registered;
} reuse_cache;

static _Thread_local reuse_cache cache;
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static bool key_ok;

static void cache_exit(void *arg)
{
    reuse_cache *c = arg;
    for (int k = 0; k < AG_REUSE_KINDS; k++)
        while (c->head[k]) {
            block *b = c->head[k];
            c->head[k] = b->next;
            free(b);
        }
    memset(c->n, 0, sizeof c->n);
    c->registered = false;
}

static void key_make(void) { key_ok = pthread_key_create(&key, cache_exit) == 0; }

void *ag__reuse_take(ag_reuse_kind kind, size_t size)
{
    reuse_cache *c = &cache;
    AG_TLS_ONCE(c);
    block *b = c->head[kind];
    if (!b) return calloc(1, size);
    c->head[kind] = b->next;
    c->n[kind]--;
    memset(b, 0, size);
    return b;
}

void ag__reuse_give(ag_reuse_kind kind, void *p)
{
    if (!p) return;
    reuse_cache *c = &cache;
    AG_TLS_ONCE(c);
    if (!c->registered) {
        /* without the exit hook the blocks would outlive the thread */
        pthread_once(&key_once, key_make);
        c->registered = key_ok && pthread_setspecific(key, c) == 0;
    }
    if (!c->registered || c->n[kind] >= REUSE_MAX) {
        free(p);
        return;
    }
    block *b = p;
    b->next = c->head[kind];
    c->head[kind] = b;
    c->n[kind]++;
}
