/* resnet.h - torchvision's ResNet topology as a flat list of conv+BN units and blocks.
 *
 * This file only DESCRIBES an encoder (shapes, names, strides); src/model.c builds and runs it.
 * Units are listed in torchvision's state_dict order: the stem (conv1/bn1), then for each block
 * conv1/bn1, conv2/bn2, [conv3/bn3], [downsample.0/downsample.1].
 *   ResNet-18/34: BasicBlock (3x3, 3x3), stages of [2,2,2,2] / [3,4,6,3] blocks.
 *   ResNet-50: Bottleneck v1.5 (1x1, 3x3 with the stride, 1x1 x4), stages [3,4,6,3]; layer1.0
 *   has a downsample (64 -> 256 channels) although its stride is 1.
 * Stems: imagenet = 7x7/2 pad 3 conv + 3x3/2 pad 1 max pool; cifar = 3x3/1 pad 1 conv, no pool.
 * Width multiplier w: base = round(64 w) channels, stage widths base * (1, 2, 4, 8) (x4 for
 * bottleneck outputs); w = 1 is torchvision exactly.
 */
#ifndef SIMCLR_RESNET_H
#define SIMCLR_RESNET_H

enum { ARCH_RESNET18 = 0, ARCH_RESNET34 = 1, ARCH_RESNET50 = 2 };
enum { STEM_IMAGENET = 0, STEM_CIFAR = 1 };

#define RESNET_MAX_UNITS 64
#define RESNET_MAX_BLOCKS 20

typedef struct {
    char conv[40], bn[40]; /* "layer1.0.conv1", "layer1.0.bn1" (no trailing dot) */
    int C, K, R, stride, pad;
    int H, W, OH, OW; /* input and output spatial size */
    int relu;         /* BN followed by ReLU (inside a block: not for the last BN, not downsample) */
    int block;        /* block index, -1 for the stem */
} ResUnit;

typedef struct {
    int unit[3], nconv; /* the main branch: 2 (basic) or 3 (bottleneck) units */
    int down;           /* downsample unit or -1 (identity shortcut) */
    int C, K, H, W, OH, OW; /* block input channels/size, output channels/size */
} ResBlock;

typedef struct {
    int arch, stem;
    int base;          /* round(64 * width) */
    int image_size;
    int nunits, nblocks;
    ResUnit units[RESNET_MAX_UNITS];
    ResBlock blocks[RESNET_MAX_BLOCKS];
    int pool;          /* stem max pool (imagenet) */
    int pool_H, pool_W; /* after the pool (= stem output when no pool) */
    int feat_dim;      /* channels of the last block = D of h */
    int final_H, final_W;
} ResNetSpec;

extern const char *const resnet_arch_names[3]; /* "resnet18", "resnet34", "resnet50" */
extern const char *const resnet_stem_names[2]; /* "imagenet", "cifar" */

/* Fills spec; returns 0, or -1 with sc_error set (unknown arch/stem, width or size out of range,
 * image too small: it must be at least the network's total stride, 32 with the imagenet stem and
 * 8 with the cifar stem, so that every stage sees a real (un-padded) pixel). */
int resnet_spec(ResNetSpec *spec, int arch, int stem, float width, int image_size);

#endif
