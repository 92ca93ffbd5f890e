/* What the op tables (unary_table.h, binary_table.h) share: the `on` column's
 * backend bits, matched against ag_backend_i.table_bit. */
#ifndef AG_TABLE_COMMON_H
#define AG_TABLE_COMMON_H

#define AG_ON_CPU 1u
#define AG_ON_OPENCL 2u
#define AG_ON_VULKAN 4u
#define AG_ON_ALL (AG_ON_CPU | AG_ON_OPENCL | AG_ON_VULKAN)

#endif /* AG_TABLE_COMMON_H */
