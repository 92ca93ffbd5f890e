/* The anygrad command-line tool: parses argv (args.c), then runs the command. */
#include <stdio.h>
#include <string.h>

#include "anygrad.h"
#include "args.h"
#include "cli.h"

int main(int argc, char **argv)
{
    cli_args a;
    cli_parse(argc, argv, &a);
    const char *name = cli_cmd_name(a.cmd);
    switch (a.action) {
    case CLI_HELP:
        cli_usage(a.cmd, stdout);
        return 0;
    case CLI_VERSION:
        printf("anygrad %s\n", AG_VERSION);
        return 0;
    case CLI_LIST:
        return cli_check_list();
    case CLI_ERROR:
        fprintf(stderr, "anygrad%s%s: %s\n", *name ? " " : "", name, a.err);
        if (a.usage_too) {
            fputc('\n', stderr);
            cli_usage(a.cmd, stderr);
        }
        return 2;
    case CLI_RUN:
        break;
    }
    switch (a.cmd) {
    case CLI_CHECK: return cli_check(&a.check);
    case CLI_DEVICES: return cli_devices(&a.devices);
    case CLI_TRAIN: return cli_train(&a.train, a.train_set);
    case CLI_EVAL: return cli_eval(&a.eval);
    case CLI_PREDICT: return cli_predict(&a.eval);
    case CLI_BENCH: return cli_bench(&a.bench);
    case CLI_PLOT: return cli_plot(&a.plot);
    case CLI_SAMPLE: return cli_sample(&a.sample);
    case CLI_TOOL: break;
    }
    return 2; /* cli_parse gives CLI_TOOL only with an action above */
}
