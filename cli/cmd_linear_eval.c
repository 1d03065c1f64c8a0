/* cmd_linear_eval.c - `simclr linear-eval`: multinomial logistic regression on frozen features
 * (from .npy files, or extracted from a checkpoint over a dataset), top-1/top-5 on the test
 * split, results to a JSON file. */
#include "cli.h"
#include "eval_cli.h"

SIMCLR_COMMAND(cmd_linear_eval, "linear-eval", "logistic regression on frozen features (linear evaluation)")

int cmd_linear_eval(int argc, char **argv) {
    EvalInputs in;
    eval_inputs_init(&in);
    EvalLinear l;
    eval_linear_init(&l);
    Opt *tables[EVAL_MAX_TABLES + 1];
    int nt = eval_inputs_tables(&in, tables, 0);
    tables[nt++] = l.opts;
    if (opts_parse("linear-eval", "logistic regression on frozen features", argc, argv, tables, nt,
                   NULL, NULL))
        sc_fatal("%s", sc_error());
    EvalData d;
    if (eval_inputs_load(&in, tables, nt, &d)) sc_fatal("%s", sc_error());
    if (eval_linear_run(&l, &in, &d, tables, nt, "linear-eval", NULL)) sc_fatal("%s", sc_error());
    eval_data_free(&d);
    return 0;
}
