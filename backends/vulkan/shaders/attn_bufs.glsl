// The attn_*.comp shaders declare their buffers with AT_BUF(binding,
// qualifier, block, name). The _pk_u variants (AG_PACKED) bind one buffer
// holding every operand, copied in and out by vk_attention.c, for devices
// that allow 4 storage buffers a shader; the names then all mean it.
#ifdef AG_PACKED
layout(std430, binding = 1) buffer All { float all_[]; };
#define AT_BUF(bind, qual, Block, name)
#define q all_
#define k all_
#define v all_
#define mask all_
#define stats all_
#define o all_
#define dout all_
#define delta all_
#define dq all_
#define dk all_
#define dv all_
#else
#define AT_BUF(bind, qual, Block, name) layout(std430, binding = bind) qual buffer Block { float name[]; };
#endif
