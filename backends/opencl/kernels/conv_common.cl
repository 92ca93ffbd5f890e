/* Shared by conv.cl and conv_tiled.cl (included; not a program of its own). */

/* Laid out as conv_p in ocl_conv.c. */
typedef struct {
    int n, c, h, w, oc, kh, kw, oh, ow;
    int sh, sw, ph, pw, dlh, dlw;
    int g, cg, ocg;
} conv_p;
