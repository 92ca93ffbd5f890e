/* The anygrad command-line tool: a table of subcommands. */
#include <stdio.h>
#include <string.h>

#include "anygrad.h"
#include "cli.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} CMDS[] = {
    {"check", cli_check, "run the conformance matrix: every op on every device against the fp64 reference"},
    {"devices", cli_devices, "list the devices, the default one, and unavailable backends (-v, --json, --calibrate)"},
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
