/* dataset.h - image datasets behind one interface: STL-10 binary, CIFAR-10/100 binary, IDX
 * (MNIST / Fashion-MNIST, gzip or raw), a folder of PNG/JPEG files, and NumPy .npy arrays.
 *
 *     DatasetConfig dc;
 *     dataset_config_default(&dc);
 *     dc.kind = DATASET_FASHION_MNIST; dc.split = "test";      // or from the CLI's dataset_opts()
 *     Dataset *ds;
 *     if (dataset_open(&ds, &dc)) sc_fatal("%s", sc_error());
 *     ImageU8 im = {0};                                         // reused, grows as needed
 *     for (size_t i = 0; i < dataset_size(ds); i++) {
 *         if (dataset_image(ds, i, &im)) sc_fatal("%s", sc_error());
 *         use(im.px, im.h, im.w, im.c, dataset_label(ds, i));   // HWC uint8, c = 1 or 3
 *     }
 *     image_free(&im);
 *     dataset_close(ds);
 *
 * Every reader checks sizes and headers before trusting them; errors name the file and what
 * was expected. Large files are memory-mapped (STL-10's 2.76 GB unlabeled_X.bin is never
 * copied); gzip IDX files are inflated into memory once. All accessors are thread-safe.
 */
#ifndef SIMCLR_DATASET_H
#define SIMCLR_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

enum {
    DATASET_STL10 = 0,
    DATASET_CIFAR10,
    DATASET_CIFAR100,
    DATASET_FASHION_MNIST,
    DATASET_IDX,
    DATASET_FOLDER,
    DATASET_NPY,
};
#define DATASET_CHOICES "stl10|cifar10|cifar100|fashion-mnist|idx|folder|npy"
#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
    int kind;            /* --dataset */
    const char *path;    /* --data: folder (stl10: holding stl10_binary/ or that folder; cifar10:
                            holding cifar-10-batches-bin/ or that folder; cifar100: holding
                            cifar-100-binary/ or that folder; idx: folder with the
                            standard names or the image file itself; folder; npy: images file).
                            NULL for fashion-mnist means FASHION_MNIST_DIR. */
    const char *split;   /* --split: stl10 train|test|unlabeled|train+unlabeled; cifar10,
                            cifar100, fashion-mnist, idx: train|test; folder with train/ and test/ (or
                            val/) subfolders: train|val|test|all, other folders: all; npy:
                            ignored. NULL: train (folder: train, or all without splits). */
    const char *labels;  /* --labels: npy labels (int, shape (N,)), or the idx label file */
    int fold;            /* --fold: STL-10 predefined training fold 0..9 (split train); -1 none */
    int coarse_labels;   /* --cifar100-labels fine|coarse: 0 the 100 fine classes, 1 the 20 coarse */
    int strict_images;   /* --strict-images: an unreadable folder file is an error */
    long long max_image_pixels; /* --max-image-pixels: PNG/JPEG files declaring more pixels are
                            refused before decoding (0: IMAGE_MAX_PIXELS_DEFAULT, PIL's limit) */
} DatasetConfig;

typedef struct Dataset Dataset;

void dataset_config_default(DatasetConfig *c);

int dataset_open(Dataset **ds, const DatasetConfig *cfg);
void dataset_close(Dataset *ds);

/* Restricts ds in place to the images idx[0..n) (in that order; repeats allowed): image i of the
 * result is image idx[i] of ds, labels follow. Returns 0 or -1 (an index out of range). */
int dataset_select(Dataset *ds, const size_t *idx, size_t n);

size_t dataset_size(const Dataset *ds);
int dataset_num_classes(const Dataset *ds);            /* 0 when unlabeled */
int dataset_label(const Dataset *ds, size_t i);        /* -1 when unlabeled */
const int32_t *dataset_labels(const Dataset *ds);      /* (N) or NULL when unlabeled */
const char *dataset_class_name(const Dataset *ds, int k); /* NULL when unknown */
/* Image i as HWC uint8 (c = 1 or 3). out->px may point into the dataset's memory (do not
 * write) or into out->buf; zero-initialise out once and image_free it at the end. */
int dataset_image(const Dataset *ds, size_t i, ImageU8 *out);
/* Side of the images when they all have the same size (h, w > 0), else 0, 0 (folder). */
void dataset_image_size(const Dataset *ds, int *h, int *w);
/* Folder datasets: number of files skipped as unreadable. */
size_t dataset_skipped(const Dataset *ds);
/* Folder datasets: the source file of image i (NULL for other kinds), and skipped file k
 * (0 <= k < dataset_skipped) with the reason and the label it would have had (-1: none). */
const char *dataset_file(const Dataset *ds, size_t i);
const char *dataset_skipped_file(const Dataset *ds, size_t k, const char **reason, int *label);
/* The median shorter side of the images (folders), or the side of fixed-size images. */
int dataset_typical_side(const Dataset *ds);
/* Warns when S (--image-size) is larger than most images: views would be upsampled. */
void dataset_warn_image_size(const Dataset *ds, int S);
/* The split that was opened ("train", "all", ...). */
const char *dataset_split(const Dataset *ds);
/* The real path of the dataset's file or folder. */
const char *dataset_source(const Dataset *ds);
/* The split used when none is given: for training (test 0) or testing (test 1). Folder with
 * train/ and test/ (or val/): train, test (val when there is no test/); other folders: all;
 * npy: file; the rest: train, test. */
const char *dataset_default_split(const DatasetConfig *cfg, int test);
/* 1 when a and b hold (some of) the same images: same kind, same file or folder, same split or
 * one split containing the other. */
int dataset_same_images(const Dataset *a, const Dataset *b);
/* Renumbers the labels of ds to the classes of ref, matching class names (a class of ds that
 * ref lacks is an error naming `what`; classes of ref that ds lacks get a note). Without
 * names on both sides only the class counts are checked. */
int dataset_align_classes(Dataset *ds, const Dataset *ref, const char *what);
/* A one-line description: "stl10 train (5000 images, 96x96x3, 10 classes)". */
const char *dataset_describe(const Dataset *ds);
/* Per-channel mean and std (population) of pixel/255 over up to max_images evenly spaced
 * images (all when max_images <= 0) at their stored resolution; gray counts for R, G and B. */
/* STL-10's fold_indices.txt format, also read by --fold-indices: one fold per non-empty line,
 * each a list of whitespace-separated 0-based train indices, every one < n_train. text[0..len)
 * need not be NUL-terminated. Returns the number of folds (1..max_folds) with idx[f] malloc'ed
 * (count[f] entries; the caller frees them), or -1 with sc_error "<what>: line L: ..." and
 * nothing allocated (the idx[f] it had filled are freed and set to NULL). */
int dataset_parse_folds(const char *what, const char *text, size_t len, size_t n_train,
                        int max_folds, size_t **idx, size_t *count);
int dataset_channel_stats(const Dataset *ds, size_t max_images, float mean[3], float std[3]);

#endif
