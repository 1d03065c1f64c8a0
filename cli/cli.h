/* cli.h - what every subcommand file includes.
 *
 * A subcommand lives in cli/cmd_<name>.c and declares itself on a line of its own, at the start
 * of the line, with no semicolon:
 *     SIMCLR_COMMAND(cmd_bench, "bench", "time full training steps on random inputs")
 * The Makefile collects these lines into build/commands.inc, from which cli/main.c builds the
 * subcommand table: adding a subcommand edits no other file.
 * Each command returns the process exit status (0 ok, 1 error) and reports errors with
 * sc_fatal("%s", sc_error()) or by printing "simclr: error: ..." and returning 1.
 */
#ifndef SIMCLR_CLI_H
#define SIMCLR_CLI_H

#include "common.h"
#include "option_tables.h"

#define SIMCLR_COMMAND(fn, name, summary)

#endif
