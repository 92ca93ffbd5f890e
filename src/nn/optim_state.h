/* Access to an optimizer's internals for checkpoints (src/nn/optim.c). Indices
 * must be in range: the callers check them against ag__optim_num_params. */
#ifndef AG_OPTIM_STATE_H
#define AG_OPTIM_STATE_H

#include "anygrad.h"

const char *ag__optim_kind_name(const ag_optim *opt);  /* "Adam", ... */
int ag__optim_num_params(const ag_optim *opt);
ag_tensor *ag__optim_param(const ag_optim *opt, int i); /* borrowed */
/* State slot 0 or 1 of parameter i (borrowed; NULL when the kind has none) and
 * its PyTorch name (exp_avg, exp_avg_sq, momentum_buffer, square_avg). */
ag_tensor *ag__optim_state(const ag_optim *opt, int i, int slot, const char **name);
int64_t ag__optim_param_steps(const ag_optim *opt, int i);
/* The largest step count a checkpoint may restore: counting further steps from
 * it can never overflow. Callers check counts against [0, this] before changing
 * anything. */
#define AG_OPTIM_MAX_STEPS (INT64_MAX / 2)
/* Sets the completed-step count and every parameter's update count. */
ag_status ag__optim_restore_steps(ag_optim *opt, int64_t steps, const int64_t *psteps);

#endif
