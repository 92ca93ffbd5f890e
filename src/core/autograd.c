/* Reverse-mode autograd: nodes recorded by ops, a topological walk from the
 * root, gradients accumulated per node, the graph freed afterwards. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

static _Thread_local int no_grad_depth;
static _Thread_local uint64_t walk_epoch; /* marks nodes visited by one backward */

bool ag__grad_mode(void) { return no_grad_depth == 0; }
void ag_no_grad_begin(void) { no_grad_depth++; }
void ag_no_grad_end(void)
{
    if (no_grad_depth > 0) no_grad_depth--;
}
bool ag_grad_enabled(void) { return no_grad_depth == 0; }

/* ---- nodes ---------------------------------------------------------------- */

ag_status ag__record(ag_tensor *y, const char *name, ag_backward_fn fn, int nin,
                     ag_tensor *const *in, ag_node **out)
{
    *out = NULL;
    if (!ag__grad_mode()) return AG_OK;
    bool needed = false;
    for (int k = 0; k < nin; k++) needed |= in[k] && in[k]->requires_grad;
    if (!needed) return AG_OK;

    ag_node *n = ag__reuse_take(AG_REUSE_NODE, sizeof *n);
    if (!n) return ag_set_error(AG_ERR_OOM, "%s: out of host memory recording autograd", name);
    n->in = nin <= AG_NODE_INLINE_IN ? n->in_inline : calloc((size_t)nin, sizeof *n->in);
    if (!n->in) {
        ag__reuse_give(AG_REUSE_NODE, n);
        return ag_set_error(AG_ERR_OOM, "%s: out of host memory recording autograd", name);
    }
    n->refs = 1;
    n->name = name;
    n->backward = fn;
    n->nin = nin;
    for (int k = 0; k < nin; k++) {
        n->in[k] = ag_retain(in[k]);
        /* an activation's shape only, until ag__save_input says otherwise;
         * leaves (parameters, data) and inputs past the inline ones
         * (concatenation) are held whole */
        if (in[k] && in[k]->node && k < AG_NODE_INLINE_IN) {
            n->in_meta |= 1u << k;
            in[k]->graph_refs++;
        }
    }
    y->node = n;
    y->requires_grad = true;
    *out = n;
    return AG_OK;
}

ag_status ag__save(ag_node *n, int slot, ag_tensor *t)
{
    if (slot < 0 || slot >= AG_NODE_SAVED || !t)
        return ag_set_error(AG_ERR_STATE, "internal: bad save slot %d", slot);
    /* An alias without history: saving an op's own output makes no cycle. */
    ag_tensor *a = ag__alias(t, t->ndim, t->shape, t->stride, t->offset);
    if (!a) return ag_last_status();
    n->saved[slot] = ag_retain(a);
    n->saved_version[slot] = ag__version(t);
    return AG_OK;
}

void ag__save_input(ag_node *n, int k)
{
    if (k < 0 || k >= AG_NODE_INLINE_IN || k >= n->nin || !n->in[k]) return;
    if (n->in_meta >> k & 1) {
        n->in_meta &= ~(1u << k);
        n->in[k]->graph_refs--;
    }
    n->in_read |= 1u << k;
    n->in_version[k] = ag__version(n->in[k]);
}

/* Backward would compute with values the forward pass did not see. */
static ag_status check_versions(const ag_node *n)
{
    for (int k = 0; k < AG_NODE_SAVED + AG_NODE_INLINE_IN; k++) {
        bool saved = k < AG_NODE_SAVED;
        int j = saved ? k : k - AG_NODE_SAVED;
        const ag_tensor *t = saved ? n->saved[j] : (n->in_read >> j) & 1 ? n->in[j] : NULL;
        if (!t) continue;
        uint32_t then = saved ? n->saved_version[j] : n->in_version[j], now = ag__version(t);
        if (now != then)
            return ag_set_error(AG_ERR_STATE,
                                "backward: a tensor saved by '%s' (its %s %d) was modified in "
                                "place after the forward pass (version %u, saved at %u); write "
                                "into a copy, or run the forward pass again after the change",
                                n->name, saved ? "saved tensor" : "input", j, now, then);
    }
    return AG_OK;
}

/* Drops what only backward needs; the node itself stays as long as its output. */
static void node_free_graph(ag_node *n)
{
    for (int k = 0; k < n->nin; k++) {
        if (k < AG_NODE_INLINE_IN && (n->in_meta >> k & 1)) n->in[k]->graph_refs--;
        ag_release(n->in[k]);
        n->in[k] = NULL;
    }
    n->in_meta = 0;
    for (int k = 0; k < AG_NODE_SAVED; k++) {
        ag_release(n->saved[k]);
        n->saved[k] = NULL;
    }
    ag_release(n->gacc);
    n->gacc = NULL;
    n->released = true;
}

void ag__node_release(ag_node *n)
{
    if (!n || --n->refs > 0) return;
    node_free_graph(n);
    if (n->in != n->in_inline) free(n->in);
    ag__reuse_give(AG_REUSE_NODE, n);
}

/* ---- user-facing flags ---------------------------------------------------- */

ag_status ag_set_requires_grad(ag_tensor *t, bool requires_grad)
{
    if (!ag__valid("ag_set_requires_grad", t)) return ag_last_status();
    if (t->node)
        return ag_set_error(AG_ERR_STATE, "ag_set_requires_grad: only leaf tensors can change "
                                          "requires_grad (this one was produced by %s)",
                            t->node->name);
    if (requires_grad && t->dtype != AG_F32)
        return ag_set_error(AG_ERR_DTYPE, "ag_set_requires_grad: %s tensors cannot have gradients",
                            ag_dtype_name(t->dtype));
    t->requires_grad = requires_grad;
    return AG_OK;
}

bool ag_requires_grad(const ag_tensor *t)
{
    return ag__valid("ag_requires_grad", t) && t->requires_grad;
}
ag_tensor *ag_grad(const ag_tensor *t) { return ag__valid("ag_grad", t) ? t->grad : NULL; }

ag_status ag_zero_grad(ag_tensor *t)
{
    if (!ag__valid("ag_zero_grad", t)) return ag_last_status();
    ag_release(t->grad);
    t->grad = NULL;
    return AG_OK;
}

/* ---- backward --------------------------------------------------------------- */

typedef struct {
    ag_node **v;
    size_t n, cap;
} node_list;

static bool push(node_list *l, ag_node *n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        ag_node **v = realloc(l->v, cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = n;
    return true;
}

/* Post-order of the nodes reachable from root, each retained; iterative so
 * deep graphs do not overflow the stack. */
typedef struct {
    ag_node *node;
    int next; /* next input to visit */
} frame;

static ag_status topo_order(ag_node *root, node_list *order)
{
    frame *stack = malloc(64 * sizeof *stack);
    size_t depth = 0, cap = 64;
    uint64_t epoch = ++walk_epoch;
    ag_status s = stack ? AG_OK : AG_ERR_OOM;
    if (stack) stack[depth++] = (frame){root, 0};
    root->mark = epoch;
    while (s == AG_OK && depth) {
        frame *f = &stack[depth - 1];
        if (f->next < f->node->nin) {
            ag_tensor *in = f->node->in[f->next++];
            if (in && !ag__alive(in)) { /* the graph's own reference was released */
                s = ag_set_error(AG_ERR_STATE, "backward: an input of %s was released while the "
                                               "graph still held it (one ag_release too many)",
                                 f->node->name);
                break;
            }
            ag_node *child = in && in->requires_grad ? in->node : NULL;
            if (!child || child->mark == epoch) continue;
            if (child->released) {
                s = ag_set_error(AG_ERR_STATE, "backward: part of the graph (%s) was already "
                                               "freed by an earlier backward", child->name);
                break;
            }
            child->mark = epoch;
            if (depth == cap) {
                frame *ns = realloc(stack, 2 * cap * sizeof *ns);
                if (!ns) {
                    s = AG_ERR_OOM;
                    break;
                }
                stack = ns;
                cap *= 2;
            }
            stack[depth++] = (frame){child, 0};
        } else {
            if (!push(order, f->node)) s = AG_ERR_OOM;
            else f->node->refs++;
            depth--;
        }
    }
    free(stack);
    if (s == AG_ERR_OOM) ag_set_error(s, "backward: out of host memory ordering the graph");
    return s;
}

/* Whether nothing but the current scope can reach g's memory. */
static bool exclusive(const ag_tensor *g)
{
    return g->refs == 1 && g->st->refs == 1 && !g->node && g->offset == 0 && ag__is_contiguous(g) &&
           (size_t)ag_numel(g) * ag_dtype_size(g->dtype) == g->st->bytes;
}

typedef enum { ACC_SHARE, ACC_COPY, ACC_COPY_UNLESS_FRESH } acc_mode;

/* *slot += g. A leaf's gradient must be its own memory (another leaf may hold
 * g itself, and users scale gradients in place), so g is copied, unless it is
 * a tensor a backward rule just made that nothing else can reach. */
static ag_status accumulate(ag_tensor **slot, ag_tensor *g, acc_mode mode)
{
    ag_tensor *sum;
    if (!*slot) {
        bool copy = mode == ACC_COPY || (mode == ACC_COPY_UNLESS_FRESH && !exclusive(g));
        sum = copy ? ag__empty_like(g) : g;
        if (sum && sum != g) {
            ag_view vd = ag__view(sum), vs = ag__view(g);
            if (AG_LAUNCH(ag__dev(g), copy, &vd, &vs) != AG_OK) sum = NULL;
        }
    } else {
        sum = ag_add(*slot, g);
    }
    if (!sum) return ag_last_status();
    ag_retain(sum);
    ag_release(*slot);
    *slot = sum;
    return AG_OK;
}

static ag_status run_node(ag_node *n)
{
    ag_tensor *gy = n->gacc;
    n->gacc = NULL;
    if (!gy) return AG_OK; /* nothing flowed here */
    ag_status s = AG_OK;
    ag_tensor *inline_gx[AG_NODE_INLINE_IN] = {0};
    ag_tensor **gx = n->nin <= AG_NODE_INLINE_IN ? inline_gx : calloc((size_t)n->nin, sizeof *gx);
    if (!gx) {
        ag_release(gy);
        return ag_set_error(AG_ERR_OOM, "backward: out of host memory");
    }
    ag_scope_begin();
    s = check_versions(n);
    if (s == AG_OK) s = n->backward(n, gy, gx);
    for (int k = 0; s == AG_OK && k < n->nin; k++) {
        ag_tensor *in = n->in[k];
        if (!gx[k] || !in || !in->requires_grad) continue;
        if (!ag__same_shape(gx[k], in)) {
            char a[160], b[160];
            ag__shape_fmt(gx[k]->ndim, gx[k]->shape, a, sizeof a);
            ag__shape_fmt(in->ndim, in->shape, b, sizeof b);
            s = ag_set_error(AG_ERR_STATE, "internal: backward of %s gave a %s gradient for a %s input",
                             n->name, a, b);
            break;
        }
        s = in->node ? accumulate(&in->node->gacc, gx[k], ACC_SHARE)
                     : accumulate(&in->grad, gx[k], ACC_COPY_UNLESS_FRESH);
    }
    ag_scope_end();
    ag_release(gy);
    if (gx != inline_gx) free(gx);
    return s;
}

ag_status ag_backward(ag_tensor *root, ag_tensor *grad)
{
    /* A NULL root keeps the error of the op that failed to produce it. */
    if (!ag__valid("backward", root) || (grad && !ag__valid("backward", grad)))
        return ag_last_status();
    if (!root->requires_grad)
        return ag_set_error(AG_ERR_STATE, "backward: the tensor does not require grad "
                                          "(no input had requires_grad set, or it was computed "
                                          "under no_grad)");
    if (root->node && root->node->released)
        return ag_set_error(AG_ERR_STATE, "backward: the graph of this tensor was already freed "
                                          "by an earlier backward");
    char a[160], b[160];
    if (grad) {
        if (grad->dtype != AG_F32)
            return ag_set_error(AG_ERR_DTYPE, "backward: the gradient is %s, not f32",
                                ag_dtype_name(grad->dtype));
        if (!ag__same_shape(grad, root)) {
            ag__shape_fmt(grad->ndim, grad->shape, a, sizeof a);
            ag__shape_fmt(root->ndim, root->shape, b, sizeof b);
            return ag_set_error(AG_ERR_SHAPE, "backward: gradient %s does not match tensor %s", a,
                                b);
        }
        if (!ag__same_device("backward", grad, root)) return AG_ERR_DEVICE;
    } else if (ag_numel(root) != 1) {
        ag__shape_fmt(root->ndim, root->shape, b, sizeof b);
        return ag_set_error(AG_ERR_SHAPE, "backward: a gradient is needed for a non-scalar tensor "
                                          "of shape %s", b);
    }

    ag_scope_begin();
    ag_no_grad_begin();
    ag_status s = AG_OK;
    ag_tensor *seed = grad ? grad : ag_ones_like(root);
    if (!seed) s = ag_last_status();
    node_list order = {0};
    if (s == AG_OK && !root->node) {
        s = accumulate(&root->grad, seed, ACC_COPY);
    } else if (s == AG_OK) {
        s = topo_order(root->node, &order);
        if (s == AG_OK) root->node->gacc = ag_retain(seed);
        /* Reverse post-order visits a node only after every consumer of it. */
        for (size_t k = order.n; k-- > 0;) {
            ag_node *n = order.v[k];
            if (s == AG_OK) s = run_node(n);
            node_free_graph(n);
        }
        for (size_t k = 0; k < order.n; k++) ag__node_release(order.v[k]);
        free(order.v);
    }
    ag_no_grad_end();
    ag_scope_end();
    return s;
}
