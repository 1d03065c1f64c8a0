/* cmd_export.c - `simclr export`: a checkpoint's encoder (and head) as an ONNX model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval_cli.h"
#include "onnx_export.h"
#include "recipe.h"
#include "safetensors.h"

SIMCLR_COMMAND(cmd_export, "export", "write a checkpoint's encoder (and head) as an ONNX model")

int cmd_export(int argc, char **argv) {
    EvalInputs in;
    eval_inputs_init(&in);
    in.batch = 1; /* no forward pass: the smallest activations */
    const char *out = NULL;
    Opt own[] = {{"output", OPT_STR, &out, "the .onnx file to write (required)"}, {0}};
    /* --checkpoint --layer --normalize --normalize-stats from the shared feature options */
    int w = 0;
    for (int r = 0; in.feat[r].name; r++) {
        const char *nm = in.feat[r].name;
        if (strcmp(nm, "checkpoint") && strcmp(nm, "layer") && strcmp(nm, "normalize") &&
            strcmp(nm, "normalize-stats"))
            continue;
        in.feat[w++] = in.feat[r];
    }
    in.feat[w] = (Opt){0};
    Opt *tables[3] = {own, in.feat, in.model};
    const char *summary = "write the encoder as ONNX (opset 13, dynamic batch, BN folded). Input "
                          "'input' (batch, 3, S, S): RGB pixel/255 in [0, 1], NCHW; the graph "
                          "applies the training normalisation itself. Output 'h' or 'z'.";
    if (opts_parse("export", summary, argc, argv, tables, 3, NULL, NULL)) sc_fatal("%s", sc_error());
    if (!out) sc_fatal("--output is required");
    if (!in.checkpoint) sc_fatal("--checkpoint is required");
    /* a plain state_dict has no stored configuration: the architecture must be given */
    SafeTensors *st;
    if (safetensors_open(&st, in.checkpoint)) sc_fatal("--checkpoint: %s", sc_error());
    const char *cfg = safetensors_meta(st, "config");
    int has_cfg = cfg != NULL;
    /* a stored configuration without some architecture options: the defaults would build another
     * model (refused later by the tensor shapes): name what is missing */
    char missing[128] = "", v[64];
    static const char *const arch_opts[] = {"arch", "stem", "width", "image-size", NULL};
    for (int k = 0; has_cfg && arch_opts[k]; k++)
        if (json_get(cfg, arch_opts[k], v, sizeof v) && !opts_was_set(tables, 3, arch_opts[k])) {
            size_t n = strlen(missing);
            snprintf(missing + n, sizeof missing - n, "%s--%s", n ? ", " : "", arch_opts[k]);
        }
    safetensors_close(st);
    if (!has_cfg && !(opts_was_set(tables, 3, "arch") && opts_was_set(tables, 3, "stem") &&
                      opts_was_set(tables, 3, "image-size")))
        sc_fatal("--checkpoint %s: no stored configuration (not a simclr checkpoint): give --arch, "
                 "--stem and --image-size (and --width, --head-layers as trained)", in.checkpoint);
    if (missing[0])
        sc_fatal("--checkpoint %s: the stored configuration lacks the architecture options %s: "
                 "give them as trained", in.checkpoint, missing);
    Model *m;
    uint64_t hash;
    if (eval_build_model(&in, tables, 3, &m, &hash)) sc_fatal("%s", sc_error());
    if (in.ac.normalize == NORMALIZE_DATASET && !in.ac.stats_set)
        sc_fatal("--normalize-stats: --normalize dataset needs the training mean and std "
                 "('m0,m1,m2,s0,s1,s2'); the checkpoint has none");
    OnnxExportConfig c;
    onnx_export_config_default(&c);
    c.layer = in.layer;
    c.image_size = model_config(m)->image_size;
    c.normalize = in.ac.normalize != NORMALIZE_NONE;
    memcpy(c.mean, in.ac.mean, sizeof c.mean);
    memcpy(c.std, in.ac.std, sizeof c.std);
    char doc[512], stats[128];
    augment_format_stats(stats, sizeof stats, c.mean, c.std);
    snprintf(doc, sizeof doc, "SimCLR encoder from %s. Input 'input' float32 (batch, 3, %d, %d): RGB, "
             "NCHW, pixel/255 in [0,1]; normalisation (mean,mean,mean,std,std,std = %s) is inside "
             "the graph. Output '%s'.", in.checkpoint, c.image_size, c.image_size,
             c.normalize ? stats : "none", c.layer ? "z" : "h");
    c.doc = doc;
    if (onnx_export(m, &c, out)) sc_fatal("--output %s: %s", out, sc_error());
    printf("export: %s %dpx -> %s (output %s, %d values per image; input RGB [0,1] NCHW%s)\n",
           resnet_arch_names[model_config(m)->arch], c.image_size, out, c.layer ? "z" : "h",
           c.layer ? model_out_dim(m) : model_feature_dim(m), c.normalize ? ", normalised inside" : "");
    model_free(m);
    return 0;
}
