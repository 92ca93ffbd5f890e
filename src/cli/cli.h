/* Subcommands of the anygrad tool: each takes its own argv (argv[0] = its name)
 * and returns the process exit status. */
#ifndef AG_CLI_H
#define AG_CLI_H

int cli_check(int argc, char **argv);

#endif
