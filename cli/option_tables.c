/* option_tables.c - see option_tables.h. */
#include "option_tables.h"

#include <string.h>

#include "common.h"

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

/* ---- the option fragments ---- */

int model_opts(Opt *o, ModelConfig *cfg) {
    int n = 0;
    o[n++] = (Opt){"arch", OPT_CHOICE, &cfg->arch, "encoder architecture",
                   .choices = "resnet18|resnet34|resnet50"};
    o[n++] = (Opt){"stem", OPT_CHOICE, &cfg->stem,
                   "first layer: imagenet (7x7/2 conv + max pool) or cifar (3x3/1 conv, no pool)",
                   .choices = "imagenet|cifar"};
    o[n++] = (Opt){"width", OPT_FLOAT, &cfg->width,
                   "width multiplier: round(64*width) base channels (1 = torchvision)"};
    o[n++] = (Opt){"image-size", OPT_INT, &cfg->image_size, "input image side in pixels"};
    o[n++] = (Opt){"head-layers", OPT_INT, &cfg->head_layers,
                   "projection head linear layers: 0 none, 1 linear, 2 MLP, >2 SimCLRv2"};
    o[n++] = (Opt){"head-hidden", OPT_INT, &cfg->head_hidden,
                   "hidden width of the projection head (0 = feature dim)"};
    o[n++] = (Opt){"head-bn", OPT_CHOICE, &cfg->head_bn,
                   "BatchNorm1d in the head: off; on = after each hidden linear (which then has no "
                   "bias; SimCLRv2/lightly); all = also after the output linear, without a shift "
                   "(google-research/simclr's head)", .choices = HEAD_BN_CHOICES};
    o[n++] = (Opt){"out-dim", OPT_INT, &cfg->out_dim, "projection output dimension"};
    o[n++] = (Opt){"zero-init-residual", OPT_FLAG, &cfg->zero_init_residual,
                   "start the last BN weight of every residual block at 0"};
    o[n] = (Opt){0};
    SC_ASSERT(n < MODEL_OPTS_MAX);
    return n;
}

Opt *optim_opts(Opt *tab, TrainOptions *t) {
    Opt o[OPTIM_NUM_OPTS + 1] = {
        {"optimizer", OPT_CHOICE, &t->optimizer, "update rule", .choices = OPTIM_CHOICES},
        {"lr", OPT_FLOAT, &t->lr, "base learning rate, before --lr-scaling", .min = 0, .max = 1e6},
        {"lr-scaling", OPT_CHOICE, &t->lr_scaling,
         "learning rate x 1, x batch/256, or x sqrt(batch)", .choices = LR_SCALING_CHOICES},
        {"momentum", OPT_FLOAT, &t->momentum, "momentum of sgd and lars", .min = 0, .max = 0.999999},
        {"nesterov", OPT_FLAG, &t->nesterov, "Nesterov momentum (sgd, lars)"},
        {"weight-decay", OPT_FLOAT, &t->weight_decay,
         "weight decay (L2 added to the gradient; decoupled for adamw)", .min = 0, .max = 1e3},
        {"exclude-bn-bias", OPT_FLAG, &t->exclude_bn_bias,
         "no weight decay on BN parameters and biases (lars: always, with no trust ratio)"},
        {"warmup-epochs", OPT_FLOAT, &t->warmup_epochs, "linear warmup length in epochs",
         .min = 0, .max = 1e6},
        {"warmup-steps", OPT_INT64, &t->warmup_steps,
         "linear warmup length in steps (overrides --warmup-epochs; -1: use epochs)",
         .min = -1, .max = 1e15},
        {"schedule", OPT_CHOICE, &t->schedule,
         "after warmup: cosine decay to 0 over the remaining steps, or constant",
         .choices = LR_SCHEDULE_CHOICES},
        {"temperature", OPT_FLOAT, &t->temperature, "NT-Xent temperature tau", .min = 1e-6,
         .max = 1e6},
        {0}};
    memcpy(tab, o, sizeof o);
    return tab;
}

void contrast_opts(Opt *o, ContrastConfig *c) {
    int n = 0;
    o[n++] = (Opt){"loss", OPT_CHOICE, &c->loss,
                   "contrastive objective (paper Table 2): ntxent, nt-logistic (mean -log sigmoid "
                   "over the positives and over the negatives), margin-triplet",
                   .choices = CONTRAST_LOSS_CHOICES};
    o[n++] = (Opt){"similarity", OPT_CHOICE, &c->similarity,
                   "cosine (z L2-normalised) or dot (the raw dot product: the 'no l2 norm' "
                   "ablation)", .choices = SIMILARITY_CHOICES};
    o[n++] = (Opt){"margin", OPT_FLOAT, &c->margin, "margin of the margin-triplet loss",
                   .min = 0, .max = 1e6};
    o[n] = (Opt){0};
}

void dataset_opts(Opt tab[DATASET_OPTS_MAX], DatasetConfig *c) {
    Opt t[] = {
        {"dataset", OPT_CHOICE, &c->kind, "dataset format", .choices = DATASET_CHOICES},
        {"data", OPT_STR, &c->path,
         "dataset location (folder or file; fashion-mnist defaults to " FASHION_MNIST_DIR ")"},
        {"split", OPT_STR, &c->split,
         "stl10: train|test|unlabeled|train+unlabeled; cifar10/cifar100/fashion-mnist/idx: "
         "train|test; "
         "folder with train/ test/ [val/] subfolders: train|val|test|all, other folders: all "
         "(default: train, else all)"},
        {"labels", OPT_STR, &c->labels, "labels file: .npy int (N,) for npy, IDX for idx"},
        {"fold", OPT_INT, &c->fold, "STL-10 predefined training fold 0..9 (-1: whole split)",
         .min = -1, .max = 9},
        {"cifar100-labels", OPT_CHOICE, &c->coarse_labels,
         "cifar100: the 100 fine classes or the 20 coarse superclasses", .choices = "fine|coarse"},
        {"strict-images", OPT_FLAG, &c->strict_images,
         "folder: an unreadable image file is an error (default: skip and count)"},
        {"max-image-pixels", OPT_INT64, &c->max_image_pixels, "folder: PNG/JPEG files declaring "
         "more pixels (width x height) are refused before decoding, as PIL does against "
         "decompression bombs", .min = 1, .max = 1e15},
        {0}};
    SC_ASSERT(sizeof t / sizeof t[0] <= DATASET_OPTS_MAX);
    memcpy(tab, t, sizeof t);
}

void augment_opts(Opt tab[AUGMENT_OPTS_MAX], AugmentConfig *a) {
    Opt t[] = {
        {"augment", OPT_CHOICE, &a->mode,
         "view pipeline: simclr (crop, flip, jitter, gray, blur) or none (resize only)",
         .choices = "simclr|none"},
        {"normalize", OPT_CHOICE, &a->normalize,
         "per-channel normalisation after augmenting (dataset: mean/std of up to 10000 images)",
         .choices = "none|imagenet|dataset"},
        {"views", OPT_INT, &a->views, "augmented views per image", .min = 1, .max = 64},
        {"crop-min-scale", OPT_FLOAT, &a->crop_min_scale, "random resized crop: min area fraction",
         .min = 1e-6, .max = 1},
        {"crop-max-scale", OPT_FLOAT, &a->crop_max_scale, "random resized crop: max area fraction",
         .min = 1e-6, .max = 1},
        {"crop-ratio-min", OPT_FLOAT, &a->crop_ratio_min, "random resized crop: min aspect w/h",
         .min = 1e-3, .max = 1e3},
        {"crop-ratio-max", OPT_FLOAT, &a->crop_ratio_max, "random resized crop: max aspect w/h",
         .min = 1e-3, .max = 1e3},
        {"flip-prob", OPT_FLOAT, &a->flip_prob, "horizontal flip probability", .min = 0, .max = 1},
        {"jitter-strength", OPT_FLOAT, &a->jitter_strength,
         "colour jitter strength s: brightness/contrast/saturation 0.8s, hue 0.2s", .min = 0,
         .max = 2.5},
        {"jitter-prob", OPT_FLOAT, &a->jitter_prob, "colour jitter probability", .min = 0, .max = 1},
        {"gray-prob", OPT_FLOAT, &a->gray_prob, "random grayscale probability", .min = 0, .max = 1},
        {"blur-prob", OPT_FLOAT, &a->blur_prob,
         "Gaussian blur probability (paper 0.5; reference code 1.0; 0 for CIFAR)", .min = 0,
         .max = 1},
        {"blur-sigma-min", OPT_FLOAT, &a->blur_sigma_min, "Gaussian blur: min sigma", .min = 1e-6,
         .max = 1e3},
        {"blur-sigma-max", OPT_FLOAT, &a->blur_sigma_max, "Gaussian blur: max sigma", .min = 1e-6,
         .max = 1e3},
        {"normalize-stats", OPT_STR, &a->normalize_stats,
         "--normalize dataset: mean and std per channel 'm0,m1,m2,s0,s1,s2' (default: computed "
         "from the training data; pretraining stores them with the run)"},
        {0}};
    SC_ASSERT(sizeof t / sizeof t[0] <= AUGMENT_OPTS_MAX);
    memcpy(tab, t, sizeof t);
}

void loader_opts(Opt tab[LOADER_OPTS_MAX], LoaderConfig *c) {
    Opt t[] = {{"loader-threads", OPT_INT, &c->threads,
                "augmentation worker threads (pthreads; 0: in the training thread)", .min = 0,
                .max = 256},
               {0}};
    memcpy(tab, t, sizeof t);
}
