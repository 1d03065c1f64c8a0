/* cmd_knn_eval.c - `simclr knn-eval`: weighted kNN (k=200, t=0.1) on L2-normalised features,
 * optionally centred (--knn-norm center) or standardised on the train features first. */
#include <stdlib.h>

#include "cli.h"
#include "eval_cli.h"
#include "knn.h"

SIMCLR_COMMAND(cmd_knn_eval, "knn-eval", "weighted kNN on L2-normalised features")

int cmd_knn_eval(int argc, char **argv) {
    EvalInputs in;
    eval_inputs_init(&in);
    int k = 200;
    double t = 0.1;
    int norm = KNN_L2;
    Opt own[] = {
        {"knn-k", OPT_INT, &k, "neighbours that vote", .min = 1, .max = 1 << 30, .alias = "k"},
        {"knn-temperature", OPT_DOUBLE, &t, "vote weight exp(cosine similarity / t)", .min = 1e-6, .max = 1e6},
        {"knn-norm", OPT_CHOICE, &norm, "features before the cosine: l2 (as they are), center "
         "(minus the train features' mean: SimpleShot's CL2N), standardize (also divided by the "
         "train features' std)", KNN_NORM_CHOICES},
        {0}};
    Opt *tables[EVAL_MAX_TABLES + 1];
    int nt = eval_inputs_tables(&in, tables, 0);
    tables[nt++] = own;
    if (opts_parse("knn-eval", "weighted kNN on L2-normalised features", argc, argv, tables, nt,
                   NULL, NULL))
        sc_fatal("%s", sc_error());
    EvalData d;
    if (eval_inputs_load(&in, tables, nt, &d)) sc_fatal("%s", sc_error());
    double top1[EVAL_MAX_FOLDS], top5[EVAL_MAX_FOLDS];
    double t0 = sc_now();
    for (int f = 0; f < d.nfolds; f++) {
        const float *Xtr = d.Xtr;
        const int *ytr = d.ytr;
        size_t ntr = d.ntr;
        if (in.folds) eval_fold(&d, f, &Xtr, &ytr, &ntr);
        if (knn_eval(Xtr, ytr, ntr, d.Xte, d.yte, d.nte, d.D, d.K, k, (float)t, norm, &top1[f], &top5[f],
                     NULL))
            sc_fatal("%s", sc_error());
        if (in.folds) printf("fold %d: top-1 %.2f%%  top-5 %.2f%%\n", f, 100 * top1[f], 100 * top5[f]);
    }
    double secs = sc_now() - t0, m1, s1, m5, s5;
    eval_mean_std(top1, d.nfolds, &m1, &s1);
    eval_mean_std(top5, d.nfolds, &m5, &s5);
    if (in.folds)
        printf("kNN (k %d, t %g, %s): top-1 %.2f +- %.2f%%  top-5 %.2f +- %.2f%% over %d folds\n", k,
               t, knn_norm_name(norm), 100 * m1, 100 * s1, 100 * m5, 100 * s5, d.nfolds);
    else
        printf("kNN (k %d, t %g, %s): top-1 %.2f%%  top-5 %.2f%%  (%zu train, %zu test, %d "
               "features, %.2fs)\n", k, t, knn_norm_name(norm), 100 * m1, 100 * m5, d.ntr, d.nte, d.D, secs);
    if (in.json) {
        EvalJson j;
        if (eval_json_begin(&j, in.json)) sc_fatal("%s", sc_error());
        eval_json_str(&j, "command", "knn-eval");
        eval_json_num(&j, "top1", m1);
        eval_json_num(&j, "top5", m5);
        if (in.folds) {
            eval_json_num(&j, "top1_std", s1);
            eval_json_num(&j, "top5_std", s5);
            eval_json_nums(&j, "fold_top1", top1, d.nfolds);
            eval_json_nums(&j, "fold_top5", top5, d.nfolds);
        }
        eval_json_num(&j, "k", k);
        eval_json_num(&j, "temperature", t);
        eval_json_str(&j, "norm", knn_norm_name(norm));
        eval_json_num(&j, "n_train", (double)d.ntr);
        eval_json_num(&j, "n_test", (double)d.nte);
        eval_json_num(&j, "dim", d.D);
        eval_json_num(&j, "classes", d.K);
        eval_json_num(&j, "seconds", secs);
        eval_inputs_json(&in, &j, tables, nt);
        if (eval_json_end(&j)) sc_fatal("%s", sc_error());
    }
    eval_data_free(&d);
    return 0;
}
