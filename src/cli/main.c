/* The anygrad command-line tool: a table of subcommands. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "anygrad.h"
#include "cli.h"

static int cmd_devices(int argc, char **argv)
{
    bool verbose = argc == 2 && strcmp(argv[1], "-v") == 0;
    if (argc > 2 || (argc == 2 && !verbose)) {
        fprintf(stderr, "usage: anygrad devices [-v]   (-v: vendor, driver, memory, units)\n");
        return 2;
    }
    int n = ag_device_count();
    if (n <= 0) {
        fprintf(stderr, "anygrad devices: no device: %s\n", ag_last_error());
        return 1;
    }
    printf("%-5s  %-8s  %s\n", "index", "backend", "name");
    for (int i = 0; i < n; i++) {
        ag_device *d = ag_device_get(i);
        printf("%-5d  %-8s  %s\n", i, ag_device_backend(d), ag_device_name(d));
        char details[1024];
        if (verbose && ag_device_details(d, details, sizeof details) == AG_OK && details[0])
            printf("       %s\n", details);
    }
    return 0;
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} CMDS[] = {
    {"check", cli_check, "run the conformance matrix: every op on every device against the fp64 reference"},
    {"devices", cmd_devices, "list the devices: index, backend, name (-v: details)"},
    {"train", cli_train, "train an MLP or CNN on Fashion-MNIST: progress, log, plot, checkpoints"},
    {"eval", cli_eval, "test loss and accuracy of a checkpoint"},
    {"plot", cli_plot, "draw a training log's loss and accuracy curves as SVG"},
};
#define NCMDS ((int)(sizeof CMDS / sizeof CMDS[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: anygrad [--help] [--version] <command> [args]\n\ncommands:\n");
    for (int i = 0; i < NCMDS; i++) fprintf(f, "  %-9s %s\n", CMDS[i].name, CMDS[i].help);
    fprintf(f, "\n`anygrad <command> --help` describes a command.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("anygrad %s\n", AG_VERSION);
        return 0;
    }
    for (int i = 0; i < NCMDS; i++)
        if (!strcmp(argv[1], CMDS[i].name)) return CMDS[i].run(argc - 1, argv + 1);
    fprintf(stderr, "anygrad: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
