/* Strided copies (with f32 <-> i32 conversion) and fills. */

#define COPY_BITS 0
#define COPY_F32_TO_I32 1
#define COPY_I32_TO_F32 2

kernel void copy_view(int mode, ag_shape sh_in, ag_strides ds_in, ag_strides ss_in, global uint *dst,
                      global const uint *src)
{
    const ag_shape sh = sh_in; /* a private copy: see common.cl */
    const ag_strides ds = ds_in; /* a private copy: see common.cl */
    const ag_strides ss = ss_in; /* a private copy: see common.cl */
    int c[8];
    AG_FOR(i, sh.numel) {
        int od, os;
        if (sh.nd <= 1) {
            od = ds.off + i * ds.s[0];
            os = ss.off + i * ss.s[0];
        } else {
            ag_coords(sh, i, c);
            od = ag_dot(ds, c, sh.nd);
            os = ag_dot(ss, c, sh.nd);
        }
        uint v = src[os];
        if (mode == COPY_F32_TO_I32) v = as_uint(convert_int_sat_rtz(as_float(v))); /* NaN -> 0 */
        else if (mode == COPY_I32_TO_F32) v = as_uint((float)as_int(v));
        dst[od] = v;
    }
}

/* dst and src of different shapes but equal sizes: both walked in row-major order */
kernel void copy_reshape(int mode, ag_shape dsh_in, ag_strides ds_in, ag_shape ssh_in, ag_strides ss_in,
                         global uint *dst, global const uint *src)
{
    const ag_shape dsh = dsh_in; /* a private copy: see common.cl */
    const ag_strides ds = ds_in; /* a private copy: see common.cl */
    const ag_shape ssh = ssh_in; /* a private copy: see common.cl */
    const ag_strides ss = ss_in; /* a private copy: see common.cl */
    int c[8];
    AG_FOR(i, dsh.numel) {
        ag_coords(dsh, i, c);
        int od = ag_dot(ds, c, dsh.nd);
        ag_coords(ssh, i, c);
        int os = ag_dot(ss, c, ssh.nd);
        uint v = src[os];
        if (mode == COPY_F32_TO_I32) v = as_uint(convert_int_sat_rtz(as_float(v)));
        else if (mode == COPY_I32_TO_F32) v = as_uint((float)as_int(v));
        dst[od] = v;
    }
}

kernel void fill_view(uint bits, ag_shape sh_in, ag_strides ds_in, global uint *dst)
{
    const ag_shape sh = sh_in; /* a private copy: see common.cl */
    const ag_strides ds = ds_in; /* a private copy: see common.cl */
    int c[8];
    AG_FOR(i, sh.numel) {
        int od;
        if (sh.nd <= 1) {
            od = ds.off + i * ds.s[0];
        } else {
            ag_coords(sh, i, c);
            od = ag_dot(ds, c, sh.nd);
        }
        dst[od] = bits;
    }
}
