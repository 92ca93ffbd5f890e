/* Thread-local last error: functions return a status or NULL, the message says why. */
#include <stdarg.h>
#include <stdio.h>

#include "base.h"

static _Thread_local char err_msg[512];
static _Thread_local ag_status err_status;

ag_status ag_set_error(ag_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    err_status = s;
    return s;
}

const char *ag_last_error(void) { return err_status == AG_OK ? "no error" : err_msg; }
ag_status ag_last_status(void) { return err_status; }

void ag_clear_error(void)
{
    err_status = AG_OK; /* err_msg is not read while the status is AG_OK */
}

static const char *const status_names[] = {
    [AG_OK] = "ok",
    [AG_ERR_ARG] = "invalid argument",
    [AG_ERR_SHAPE] = "shape mismatch",
    [AG_ERR_DTYPE] = "dtype mismatch",
    [AG_ERR_DEVICE] = "device error",
    [AG_ERR_OOM] = "out of memory",
    [AG_ERR_IO] = "I/O error",
    [AG_ERR_STATE] = "invalid state",
    [AG_ERR_UNSUPPORTED] = "unsupported",
};

const char *ag_status_name(ag_status s)
{
    if ((unsigned)s >= sizeof status_names / sizeof status_names[0]) return "unknown status";
    return status_names[s];
}
