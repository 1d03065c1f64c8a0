/* main.c - the `simclr` command: dispatches to the subcommands declared in cli/cmd_*.c. */
#include <stdio.h>
#include <string.h>

#include "comm.h"
#include "common.h"
#include "option_tables.h"

#define SIMCLR_COMMAND(fn, name, summary) int fn(int argc, char **argv);
#include "commands.inc"
#undef SIMCLR_COMMAND

static const struct {
    const char *name, *summary;
    int (*fn)(int, char **);
} commands[] = {
#define SIMCLR_COMMAND(fn, name, summary) {name, summary, fn},
#include "commands.inc"
#undef SIMCLR_COMMAND
};

static void usage(FILE *f) {
    fprintf(f, "usage: simclr <command> [options]   (simclr <command> --help for its options)\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    sc_error_names(cli_option_name); /* library parameters reach the user as their options */
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    /* Under mpirun only `pretrain` and `bench` use the processes together; every other command
     * (features, linear-eval, knn-eval, ...) runs in process 0 alone and the others leave. */
    if (comm_env_size() > 1 && comm_env_rank() > 0 && strcmp(argv[1], "pretrain") &&
        strcmp(argv[1], "bench"))
        return 0;
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "simclr: error: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 1;
}
