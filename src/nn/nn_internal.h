/* Internal hooks between the module code and the checkpoint code. */
#ifndef AG_NN_INTERNAL_H
#define AG_NN_INTERNAL_H

#include "anygrad.h"

/* Re-reads buffers that mirror host counters (batch norm's num_batches_tracked). */
ag_status ag__module_sync_counters(ag_module *m);

#endif
