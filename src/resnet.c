/* resnet.c - torchvision ResNet topology (see resnet.h). */
#include "resnet.h"

#include <math.h>
#include <stdio.h>

#include <stdlib.h>

#include "common.h"
#include "layers.h"

const char *const resnet_arch_names[3] = {"resnet18", "resnet34", "resnet50"};
const char *const resnet_stem_names[2] = {"imagenet", "cifar"};

static int conv_out(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

static int add_unit(ResNetSpec *s, const char *conv, const char *bn, int C, int K, int R,
                    int stride, int H, int W, int relu, int block) {
    SC_ASSERT(s->nunits < RESNET_MAX_UNITS);
    ResUnit *u = &s->units[s->nunits];
    snprintf(u->conv, sizeof u->conv, "%s", conv);
    snprintf(u->bn, sizeof u->bn, "%s", bn);
    u->C = C, u->K = K, u->R = R, u->stride = stride, u->pad = R / 2;
    u->H = H, u->W = W;
    u->OH = conv_out(H, R, stride, u->pad), u->OW = conv_out(W, R, stride, u->pad);
    u->relu = relu, u->block = block;
    return s->nunits++;
}

int resnet_spec(ResNetSpec *s, int arch, int stem, float width, int image_size) {
    static const int depth[3][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}};
    if (arch < 0 || arch > 2) return sc_error_set("model.arch: expected resnet18, resnet34 or resnet50");
    if (stem < 0 || stem > 1) return sc_error_set("model.stem: expected imagenet or cifar");
    if (!(width > 0) || width > 64)
        return sc_error_set("model.width: expected a width multiplier in (0, 64], got %g", width);
    int base = (int)lround(64.0 * width);
    if (base < 1)
        return sc_error_set("model.width: %g gives round(64 * width) = 0 base channels; expected at "
                            "least 1/128", width);
    int min_size = stem == STEM_IMAGENET ? 32 : 8;
    if (image_size <= 0)
        return sc_error_set("model.image_size: expected a positive size, got %d", image_size);
    if (image_size < min_size)
        return sc_error_set("model.image_size: %d is too small for %s with the %s stem (total stride "
                            "%d): expected at least %d", image_size, resnet_arch_names[arch],
                            resnet_stem_names[stem], min_size, min_size);
    if (image_size > 4096)
        return sc_error_set("model.image_size: expected at most 4096, got %d", image_size);
    *s = (ResNetSpec){0};
    s->arch = arch, s->stem = stem, s->base = base, s->image_size = image_size;
    int H = image_size, W = image_size;
    int u0 = stem == STEM_IMAGENET ? add_unit(s, "conv1", "bn1", 3, base, 7, 2, H, W, 1, -1)
                                   : add_unit(s, "conv1", "bn1", 3, base, 3, 1, H, W, 1, -1);
    H = s->units[u0].OH, W = s->units[u0].OW;
    s->pool = stem == STEM_IMAGENET;
    if (s->pool) H = pool_out_size(H, 3, 2, 1), W = pool_out_size(W, 3, 2, 1);
    s->pool_H = H, s->pool_W = W;
    int bottleneck = arch == ARCH_RESNET50, expansion = bottleneck ? 4 : 1;
    int C = base;
    char a[40], b[40];
    for (int L = 0; L < 4; L++) {
        int planes = base << L, K = planes * expansion;
        for (int i = 0; i < depth[arch][L]; i++) {
            int stride = (i == 0 && L > 0) ? 2 : 1;
            int bi = s->nblocks++;
            SC_ASSERT(bi < RESNET_MAX_BLOCKS);
            ResBlock *blk = &s->blocks[bi];
            blk->C = C, blk->K = K, blk->H = H, blk->W = W;
            int h = H, w = W;
            if (bottleneck) {
                snprintf(a, sizeof a, "layer%d.%d.conv1", L + 1, i), snprintf(b, sizeof b, "layer%d.%d.bn1", L + 1, i);
                blk->unit[0] = add_unit(s, a, b, C, planes, 1, 1, h, w, 1, bi);
                snprintf(a, sizeof a, "layer%d.%d.conv2", L + 1, i), snprintf(b, sizeof b, "layer%d.%d.bn2", L + 1, i);
                blk->unit[1] = add_unit(s, a, b, planes, planes, 3, stride, h, w, 1, bi);
                h = s->units[blk->unit[1]].OH, w = s->units[blk->unit[1]].OW;
                snprintf(a, sizeof a, "layer%d.%d.conv3", L + 1, i), snprintf(b, sizeof b, "layer%d.%d.bn3", L + 1, i);
                blk->unit[2] = add_unit(s, a, b, planes, K, 1, 1, h, w, 0, bi);
                blk->nconv = 3;
            } else {
                snprintf(a, sizeof a, "layer%d.%d.conv1", L + 1, i), snprintf(b, sizeof b, "layer%d.%d.bn1", L + 1, i);
                blk->unit[0] = add_unit(s, a, b, C, planes, 3, stride, h, w, 1, bi);
                h = s->units[blk->unit[0]].OH, w = s->units[blk->unit[0]].OW;
                snprintf(a, sizeof a, "layer%d.%d.conv2", L + 1, i), snprintf(b, sizeof b, "layer%d.%d.bn2", L + 1, i);
                blk->unit[1] = add_unit(s, a, b, planes, K, 3, 1, h, w, 0, bi);
                blk->unit[2] = -1;
                blk->nconv = 2;
            }
            blk->down = -1;
            if (stride != 1 || C != K) {
                snprintf(a, sizeof a, "layer%d.%d.downsample.0", L + 1, i), snprintf(b, sizeof b, "layer%d.%d.downsample.1", L + 1, i);
                blk->down = add_unit(s, a, b, C, K, 1, stride, H, W, 0, bi);
                SC_ASSERT(s->units[blk->down].OH == h && s->units[blk->down].OW == w);
            }
            blk->OH = h, blk->OW = w;
            H = h, W = w, C = K;
        }
    }
    s->feat_dim = C;
    s->final_H = H, s->final_W = W;
    return 0;
}
