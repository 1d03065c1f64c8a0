/* option_tables.c - see option_tables.h. */
#include "option_tables.h"

#include <string.h>

/* library parameter (module.field, as src/ names it in its messages) -> option */
static const char *const names[][2] = {
    {"augment.out_size", "--image-size"},
    {"augment.views", "--views"},
    {"augment.crop_min_scale", "--crop-min-scale"},
    {"augment.crop_max_scale", "--crop-max-scale"},
    {"augment.crop_ratio_min", "--crop-ratio-min"},
    {"augment.crop_ratio_max", "--crop-ratio-max"},
    {"augment.jitter_strength", "--jitter-strength"},
    {"augment.blur_sigma_min", "--blur-sigma-min"},
    {"augment.blur_sigma_max", "--blur-sigma-max"},
    {"augment.normalize_stats", "--normalize-stats"},
    {"contrast.tau", "--temperature"},
    {"dataset.path", "--data"},
    {"dataset.split", "--split"},
    {"dataset.fold", "--fold"},
    {"dataset.kind", "--dataset"},
    {"dataset.strict_images", "--strict-images"},
    {"dataset.image_size", "--image-size"},
    {"eval.json", "--json"},
    {"eval.num_classes", "--num-classes"},
    {"export.image_size", "--image-size"},
    {"features.batch", "--batch-size"},
    {"features.image_size", "--image-size"},
    {"finetune.label_fraction", "--label-fraction"},
    {"finetune.labels_per_class", "--labels-per-class"},
    {"image.max_pixels", "--max-image-pixels"},
    {"knn.k", "--k"},
    {"knn.temperature", "--knn-temperature"},
    {"loader.batch_size", "--batch-size"},
    {"loader.threads", "--loader-threads"},
    {"model.arch", "--arch"},
    {"model.stem", "--stem"},
    {"model.width", "--width"},
    {"model.image_size", "--image-size"},
    {"model.head_layers", "--head-layers"},
    {"model.head_hidden", "--head-hidden"},
    {"model.out_dim", "--out-dim"},
    {"model.precision", "--precision"},
    {"model.max_batch", "--batch-size"},
    {"ntxent.tau", "--temperature"},
    {"optim.type", "--optimizer"},
    {"optim.weight_decay", "--weight-decay"},
    {"optim.momentum", "--momentum"},
    {"optim.nesterov", "--nesterov"},
    {"pca.components", "--components"},
    {"recipe.name", "--recipe"},
    {"run.dir", "--out"},
    {"run.resume", "--resume"},
    {"run.force", "--force"},
    {"schedule.lr", "--lr"},
    {"schedule.batch", "--batch-size"},
    {"schedule.scaling", "--lr-scaling"},
    {"schedule.kind", "--schedule"},
    {"schedule.warmup_epochs", "--warmup-epochs"},
    {"schedule.warmup_steps", "--warmup-steps"},
};

const char *cli_option_name(const char *key) {
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(names[i][0], key)) return names[i][1];
    return NULL;
}
