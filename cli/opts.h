/* opts.h - one option table per subcommand drives both parsing and --help.
 *
 * A subcommand builds its table from fragments owned by the modules (model options, optimizer
 * options, data options, ...) so an option has one name, one type and one help text everywhere.
 *
 *     int batch = 256; float lr = 3e-4f; int opt = 0; const char *out = NULL;
 *     Opt common[] = {
 *         {"batch-size", OPT_INT, &batch, "images per batch", .min = 1, .max = 1 << 20},
 *         {"lr", OPT_FLOAT, &lr, "base learning rate", .min = 0, .max = 1e6},
 *         {"optimizer", OPT_CHOICE, &opt, "update rule", .choices = "adam|adamw|sgd|lars"},
 *         {"out", OPT_STR, &out, "run folder"},
 *         {0}};
 *     Opt *tables[] = {common};
 *     if (opts_parse("pretrain", "train an encoder", argc, argv, tables, 1, NULL, NULL))
 *         sc_fatal("%s", sc_error());
 *
 * Syntax: --name value or --name=value; OPT_FLAG takes no value (--force), and --no-name
 * clears it. "--help" (or "-h") reads the rest of the command line, lets the command resolve
 * its values (opts_on_help: recipe, sizes from the data), prints the table with the values that
 * will be used and exits 0. Errors name the option: "--batch-size: expected an integer >= 1,
 * got 'abc'"; an unknown option names the closest known one.
 */
#ifndef SIMCLR_OPTS_H
#define SIMCLR_OPTS_H

#include <stdio.h>

typedef enum {
    OPT_END = 0,
    OPT_INT,    /* int* */
    OPT_INT64,  /* long long* */
    OPT_FLOAT,  /* float* */
    OPT_DOUBLE, /* double* */
    OPT_STR,    /* const char** (points into argv) */
    OPT_FLAG,   /* int*, set to 1 (or 0 with --no-name) */
    OPT_CHOICE, /* int*, index into the '|'-separated choices */
} OptType;

typedef struct {
    const char *name; /* without the leading "--"; NULL ends a table */
    OptType type;
    void *dst;
    const char *help;
    const char *choices; /* OPT_CHOICE: "a|b|c" */
    double min, max;     /* inclusive range for numbers, checked when min < max */
    int set;             /* output: 1 when given on the command line */
    int output;          /* OPT_STR naming a file the command writes: opts_parse checks that it
                            can be created (sc_output_check) before any work is done */
    int owned;           /* OPT_STR: *dst is a copy made by opt_assign (recipe.h), freed when the
                            option is assigned again; what is left at exit is the caller's */
    const char *alias;   /* another accepted name (an older or shorter spelling), or NULL */
} Opt;

/* Parses argv[1..argc) (argv[0] is the subcommand name). Positional arguments are returned in
 * *pos (pointers into argv, up to max_pos of them; an extra one is an error); pass NULL, NULL to
 * accept none. Returns 0, or -1 with sc_error() set. Prints help and exits 0 on --help.
 * Options marked .output = 1 that were given are checked with sc_output_check. */
int opts_parse(const char *cmd, const char *summary, int argc, char **argv, Opt **tables,
               int ntables, const char **pos, int *npos_inout);
/* Registers a function that opts_parse calls on --help after reading the whole command line,
 * before printing: it applies what the command would apply (a recipe, sizes from the data) and
 * may return a line saying so (or NULL). Values it changes are marked in the help. One per
 * process; fn NULL removes it. */
void opts_on_help(const char *(*fn)(void *ctx, Opt **tables, int ntables), void *ctx);
/* Parses v into the option's destination with the same checks as the command line (type,
 * range, choices) but does not mark the option as set: for recipes and saved configurations. */
int opts_assign(Opt *o, const char *v);
/* Finds an option by name across the tables (NULL when absent). */
Opt *opts_find(Opt **tables, int ntables, const char *name);
/* 1 when the option was given on the command line. */
int opts_was_set(Opt **tables, int ntables, const char *name);
/* Appends "name=value" lines of every option (the resolved configuration) to f. */
void opts_print(FILE *f, Opt **tables, int ntables);
/* Writes the resolved configuration as one flat JSON object {"name": value, ...}. */
void opts_write_json(FILE *f, Opt **tables, int ntables);
/* Name of choice index i in "a|b|c" (static buffer per call site is not used: returns a
 * malloc'ed string the caller frees). */
char *opts_choice_name(const char *choices, int i);

/* Option strings copied by opt_assign: frees `old` (a copy made earlier, or NULL) and records
 * `s` (or nothing when NULL). Copies still held at exit stay reachable, not leaked. */
void opts_own_string(char *old, char *s);

#endif
