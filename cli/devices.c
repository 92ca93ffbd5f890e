/* anygrad devices: what the probe found, which device is the default and why,
 * and which backends are unavailable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anygrad.h"
#include "cli.h"

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
        else putchar(*s);
    }
    putchar('"');
}

int cli_devices(const cli_devices_opts *o)
{
    const bool verbose = o->verbose, calibrate = o->calibrate, json = o->json;
    int n = ag_device_count();
    if (n <= 0) {
        fprintf(stderr, "anygrad devices: no device: %s\n", ag_last_error());
        return 1;
    }
    int status = 0;
    if (calibrate)
        for (int i = 0; i < n; i++)
            if (ag_device_calibrate(ag_device_get(i), true) != AG_OK) {
                fprintf(stderr, "anygrad devices: %s\n", ag_last_error());
                status = 1;
            }
    ag_device *chosen = ag_device_default();
    char env_error[1024] = "";
    if (!chosen) { /* AG_DEVICE names no device, or several */
        snprintf(env_error, sizeof env_error, "%s", ag_last_error());
        status = 1;
    }
    if (json) printf("{\"devices\": [");
    else
        printf("  %-5s  %-7s  %-14s  %9s  %9s  %8s  %s\n", "index", "backend", "kind", "memory",
               "GFLOP/s", "GB/s", "name");
    for (int i = 0; i < n; i++) {
        ag_device *d = ag_device_get(i);
        ag_device_props p;
        char details[1024] = "";
        if (ag_device_info(d, &p) != AG_OK) continue;
        ag_device_details(d, details, sizeof details);
        if (json) {
            printf("%s\n  {\"index\": %d, \"backend\": ", i ? "," : "", i);
            json_string(p.backend);
            printf(", \"name\": ");
            json_string(p.name);
            printf(", \"kind\": ");
            json_string(ag_device_kind_name(p.kind));
            printf(", \"memory_bytes\": %llu, \"gflops\": %.1f, \"gbps\": %.1f, \"default\": %s, "
                   "\"selected\": %s, \"same_as\": %d, \"details\": ",
                   (unsigned long long)p.memory_bytes, p.gflops, p.gbps, p.is_default ? "true" : "false",
                   d == chosen ? "true" : "false", p.same_as);
            json_string(details);
            printf("}");
            continue;
        }
        char gf[16] = "-", gb[16] = "-";
        if (p.gflops > 0) snprintf(gf, sizeof gf, "%.1f", p.gflops);
        if (p.gbps > 0) snprintf(gb, sizeof gb, "%.1f", p.gbps);
        printf("%c %-5d  %-7s  %-14s  %7.1f G  %9s  %8s  %s\n", d == chosen ? '*' : ' ', i, p.backend,
               ag_device_kind_name(p.kind), p.memory_bytes / 1073741824.0, gf, gb, p.name);
        if (p.same_as >= 0) printf("         the same GPU as device %d, which is preferred\n", p.same_as);
        if (verbose && details[0]) printf("         %s\n", details);
    }
    int nu = ag_device_unavailable_count();
    if (json) {
        printf("\n], \"unavailable\": [");
        for (int u = 0; u < nu; u++) {
            const char *why;
            const char *be = ag_device_unavailable(u, &why);
            printf("%s{\"backend\": ", u ? ", " : "");
            json_string(be);
            printf(", \"reason\": ");
            json_string(why);
            printf("}");
        }
        printf("]}\n");
        if (env_error[0]) fprintf(stderr, "anygrad devices: AG_DEVICE selects nothing: %s\n", env_error);
        return status;
    }
    for (int u = 0; u < nu; u++) {
        const char *why;
        const char *be = ag_device_unavailable(u, &why);
        printf("  %s unavailable: %s\n", be, why);
    }
    const char *env = getenv("AG_DEVICE");
    if (env_error[0])
        fprintf(stderr, "anygrad devices: AG_DEVICE=%s selects nothing: %s\n", env, env_error);
    else
        printf("* = selected (%s)\n", env && *env ? "AG_DEVICE" : "best kind: discrete gpu > integrated gpu > cpu; "
                                                                "software devices only by name");
    return status;
}

bool cli_use_device(const char *cmd, const char *name)
{
    ag_device *dev = name ? ag_device_by_name(name) : ag_device_default();
    if (dev && !name && !getenv("AG_DEVICE")) dev = cli_dist_device(dev);
    if (dev && ag_set_default_device(dev) == AG_OK) return true;
    fprintf(stderr, "anygrad %s: --device %s: %s\n", cmd, name ? name : "(default)", ag_last_error());
    return false;
}
