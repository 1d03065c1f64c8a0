/* onnx_export.c - see onnx_export.h. The ModelProto is written with pbwire (field numbers from
 * onnx/onnx.proto, ONNX 1.12): a graph of nodes named after the torchvision modules, weights as
 * float32 raw_data initializers. */
#include "onnx_export.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "layers.h"
#include "pbwire.h"

#define ONNX_OPSET 13
#define ONNX_IR_VERSION 7 /* the IR of opset 13 */
enum { ONNX_FLOAT = 1 };  /* TensorProto.DataType */
enum { ATTR_INT = 2, ATTR_INTS = 7 }; /* AttributeProto.AttributeType */

void onnx_export_config_default(OnnxExportConfig *c) {
    memset(c, 0, sizeof *c);
    c->layer = 0;
    c->image_size = 96;
}

/* ---- protobuf pieces ---------------------------------------------------------------------- */

/* GraphProto.initializer (5): TensorProto {dims 1, data_type 2, name 8, raw_data 9} */
static void initializer(PbBuf *g, const char *name, const float *v, int ndim, const int64_t *dims) {
    size_t at = pb_begin(g, 5), n = 1;
    for (int i = 0; i < ndim; i++) pb_int(g, 1, dims[i]), n *= (size_t)dims[i];
    pb_int(g, 2, ONNX_FLOAT);
    pb_string(g, 8, name);
    /* raw_data is little-endian float32: our memory layout on x86-64 / aarch64 */
    pb_bytes(g, 9, v, n * sizeof(float));
    pb_end(g, at);
}

typedef struct {
    const char *name;
    int n;
    int64_t v[4];
} IntsAttr;

/* GraphProto.node (1): NodeProto {input 1, output 2, name 3, op_type 4, attribute 5
 * {name 1, i 3, ints 8, type 20}} */
static void node(PbBuf *g, const char *op, const char *name, const char *const *in, int nin,
                 const char *out, const IntsAttr *attrs, int nattrs) {
    size_t at = pb_begin(g, 1);
    for (int i = 0; i < nin; i++) pb_string(g, 1, in[i]);
    pb_string(g, 2, out);
    pb_string(g, 3, name);
    pb_string(g, 4, op);
    for (int a = 0; a < nattrs; a++) {
        size_t aa = pb_begin(g, 5);
        pb_string(g, 1, attrs[a].name);
        if (attrs[a].n < 0) { /* a single int */
            pb_int(g, 3, attrs[a].v[0]);
            pb_int(g, 20, ATTR_INT);
        } else {
            for (int k = 0; k < attrs[a].n; k++) pb_int(g, 8, attrs[a].v[k]);
            pb_int(g, 20, ATTR_INTS);
        }
        pb_end(g, aa);
    }
    pb_end(g, at);
}

/* GraphProto.input (11) / output (12): ValueInfoProto {name 1, type 2: TypeProto {tensor_type 1:
 * {elem_type 1, shape 2: TensorShapeProto {dim 1: {dim_value 1 | dim_param 2}}}}};
 * dims[i] < 0 is the symbolic "batch". */
static void value_info(PbBuf *g, int field, const char *name, int ndim, const int64_t *dims) {
    size_t at = pb_begin(g, field);
    pb_string(g, 1, name);
    size_t ty = pb_begin(g, 2), tt = pb_begin(g, 1);
    pb_int(g, 1, ONNX_FLOAT);
    size_t sh = pb_begin(g, 2);
    for (int i = 0; i < ndim; i++) {
        size_t d = pb_begin(g, 1);
        if (dims[i] < 0) pb_string(g, 2, "batch");
        else pb_int(g, 1, dims[i]);
        pb_end(g, d);
    }
    pb_end(g, sh);
    pb_end(g, tt);
    pb_end(g, ty);
    pb_end(g, at);
}

/* ---- the network -------------------------------------------------------------------------- */

static const float *tensor_data(Model *m, const char *prefix, const char *suffix, size_t numel) {
    char name[96];
    snprintf(name, sizeof name, "%s%s", prefix, suffix);
    int i = model_find_tensor(m, name);
    SC_ASSERT(i >= 0);
    const ModelTensor *t = model_tensor(m, i);
    SC_ASSERT(t->numel == numel && t->kind != MODEL_COUNTER);
    return (t->kind == MODEL_PARAM ? model_params(m) : model_buffers(m)) + t->offset;
}

/* Per-channel scale gamma / sqrt(var + eps) and shift beta - mean * scale of BN `bn`, computed
 * in double and rounded once. */
static void bn_fold(Model *m, const char *bn, int K, float *scale, float *shift) {
    const float *g = tensor_data(m, bn, ".weight", K), *b = tensor_data(m, bn, ".bias", K);
    const float *mu = tensor_data(m, bn, ".running_mean", K), *var = tensor_data(m, bn, ".running_var", K);
    for (int k = 0; k < K; k++) {
        double s = (double)g[k] / sqrt((double)var[k] + (double)BN_EPS);
        scale[k] = (float)s;
        shift[k] = (float)((double)b[k] - (double)mu[k] * s);
    }
}

/* One conv + folded BN (+ ReLU): in -> out; returns the name of its output in out. */
static void conv_unit(PbBuf *g, Model *m, const ResUnit *u, const char *in, char *out, size_t outn) {
    size_t wn = (size_t)u->K * u->C * u->R * u->R;
    const float *w = tensor_data(m, u->conv, ".weight", wn);
    float *wf = sc_alloc(wn * sizeof(float)), *scale = sc_alloc(u->K * sizeof(float)),
          *shift = sc_alloc(u->K * sizeof(float));
    bn_fold(m, u->bn, u->K, scale, shift);
    size_t per = wn / u->K;
    for (int k = 0; k < u->K; k++)
        for (size_t j = 0; j < per; j++) wf[k * per + j] = w[k * per + j] * scale[k];
    char wname[64], bname[64];
    snprintf(wname, sizeof wname, "%s.weight", u->conv);
    snprintf(bname, sizeof bname, "%s.bias", u->conv); /* the folded BN's shift */
    int64_t wd[4] = {u->K, u->C, u->R, u->R}, bd[1] = {u->K};
    initializer(g, wname, wf, 4, wd);
    initializer(g, bname, shift, 1, bd);
    free(wf), free(scale), free(shift);
    IntsAttr at[4] = {{"kernel_shape", 2, {u->R, u->R}},
                      {"strides", 2, {u->stride, u->stride}},
                      {"pads", 4, {u->pad, u->pad, u->pad, u->pad}},
                      {"dilations", 2, {1, 1}}};
    const char *ins[3] = {in, wname, bname};
    snprintf(out, outn, "%s", u->bn); /* the tensor after conv + BN is named after the BN */
    node(g, "Conv", u->conv, ins, 3, out, at, 4);
    if (u->relu) {
        char r[64];
        snprintf(r, sizeof r, "%s.relu", u->bn);
        const char *rin[1] = {out};
        node(g, "Relu", r, rin, 1, r, NULL, 0);
        snprintf(out, outn, "%s", r);
    }
}

static void build_graph(PbBuf *g, Model *m, const OnnxExportConfig *c) {
    const ResNetSpec *sp = model_spec(m);
    const ModelConfig *mc = model_config(m);
    pb_string(g, 2, "simclr"); /* GraphProto.name */
    char cur[64] = "input";
    if (c->normalize) {
        float mean[3], istd[3];
        for (int k = 0; k < 3; k++) mean[k] = c->mean[k], istd[k] = 1.0f / c->std[k]; /* as aug_normalize */
        int64_t d[3] = {3, 1, 1}; /* broadcast over (batch, 3, S, S); OpenCV 4.6 rejects (1,3,1,1) */
        initializer(g, "normalize.mean", mean, 3, d);
        initializer(g, "normalize.inv_std", istd, 3, d);
        const char *a[2] = {"input", "normalize.mean"}, *b[2] = {"normalize.centered", "normalize.inv_std"};
        node(g, "Sub", "normalize.sub", a, 2, "normalize.centered", NULL, 0);
        node(g, "Mul", "normalize.mul", b, 2, "normalize", NULL, 0);
        snprintf(cur, sizeof cur, "normalize");
    }
    char t[64];
    conv_unit(g, m, &sp->units[0], cur, t, sizeof t);
    snprintf(cur, sizeof cur, "%s", t);
    if (sp->pool) {
        IntsAttr at[3] = {{"kernel_shape", 2, {3, 3}}, {"strides", 2, {2, 2}}, {"pads", 4, {1, 1, 1, 1}}};
        const char *in[1] = {cur};
        node(g, "MaxPool", "maxpool", in, 1, "maxpool", at, 3);
        snprintf(cur, sizeof cur, "maxpool");
    }
    for (int b = 0; b < sp->nblocks; b++) {
        const ResBlock *blk = &sp->blocks[b];
        char x[64], sc[64], prefix[40];
        snprintf(x, sizeof x, "%s", cur);
        for (int k = 0; k < blk->nconv; k++) {
            conv_unit(g, m, &sp->units[blk->unit[k]], x, t, sizeof t);
            snprintf(x, sizeof x, "%s", t);
        }
        if (blk->down >= 0) conv_unit(g, m, &sp->units[blk->down], cur, sc, sizeof sc);
        else snprintf(sc, sizeof sc, "%s", cur);
        /* "layer1.0.conv1" -> "layer1.0" */
        snprintf(prefix, sizeof prefix, "%s", sp->units[blk->unit[0]].conv);
        char *dot = strrchr(prefix, '.');
        if (dot) *dot = 0;
        char add[64], relu[64];
        snprintf(add, sizeof add, "%s.add", prefix);
        snprintf(relu, sizeof relu, "%s.relu", prefix);
        const char *ain[2] = {x, sc}, *rin[1] = {add};
        node(g, "Add", add, ain, 2, add, NULL, 0);
        node(g, "Relu", relu, rin, 1, relu, NULL, 0);
        snprintf(cur, sizeof cur, "%s", relu);
    }
    {
        const char *in[1] = {cur}, *fin[1] = {"avgpool"};
        IntsAttr ax = {"axis", -1, {1}};
        node(g, "GlobalAveragePool", "avgpool", in, 1, "avgpool", NULL, 0);
        node(g, "Flatten", "flatten", fin, 1, "h", &ax, 1);
    }
    int D = sp->feat_dim, outD = D;
    if (c->layer == 1 && mc->head_layers > 0) {
        int hid = mc->head_hidden ? mc->head_hidden : D, in = D, idx = 0;
        snprintf(cur, sizeof cur, "h");
        for (int l = 0; l < mc->head_layers; l++) {
            int last = l == mc->head_layers - 1, O = last ? mc->out_dim : hid, bn = !last && mc->head_bn;
            char lin[32], wname[48], bname[48], out[48];
            snprintf(lin, sizeof lin, "head.%d", idx++);
            snprintf(wname, sizeof wname, "%s.weight", lin);
            snprintf(bname, sizeof bname, "%s.bias", lin);
            const float *w = tensor_data(m, lin, ".weight", (size_t)O * in);
            float *wf = sc_alloc((size_t)O * in * sizeof(float)), *bf = sc_alloc(O * sizeof(float));
            if (bn) { /* Linear without bias, then BatchNorm1d: fold it into the Linear */
                char bnn[32];
                snprintf(bnn, sizeof bnn, "head.%d", idx++);
                float *scale = sc_alloc(O * sizeof(float));
                bn_fold(m, bnn, O, scale, bf);
                for (int o = 0; o < O; o++)
                    for (int i = 0; i < in; i++) wf[(size_t)o * in + i] = w[(size_t)o * in + i] * scale[o];
                free(scale);
            } else {
                memcpy(wf, w, (size_t)O * in * sizeof(float));
                memcpy(bf, tensor_data(m, lin, ".bias", O), O * sizeof(float));
            }
            int64_t wd[2] = {O, in}, bd[1] = {O};
            initializer(g, wname, wf, 2, wd);
            initializer(g, bname, bf, 1, bd);
            free(wf), free(bf);
            snprintf(out, sizeof out, "%s", last ? "z" : lin);
            IntsAttr tb = {"transB", -1, {1}};
            const char *gin[3] = {cur, wname, bname};
            node(g, "Gemm", lin, gin, 3, out, &tb, 1);
            snprintf(cur, sizeof cur, "%s", out);
            if (!last) {
                char r[32];
                snprintf(r, sizeof r, "head.%d", idx++); /* the ReLU's index in the Sequential */
                const char *rin[1] = {cur};
                node(g, "Relu", r, rin, 1, r, NULL, 0);
                snprintf(cur, sizeof cur, "%s", r);
            }
            in = O;
        }
        outD = mc->out_dim;
    } else if (c->layer == 1) { /* no head: z = h */
        const char *in[1] = {"h"};
        node(g, "Identity", "head", in, 1, "z", NULL, 0);
    }
    int64_t idims[4] = {-1, 3, c->image_size, c->image_size}, odims[2] = {-1, outD};
    value_info(g, 11, "input", 4, idims);
    value_info(g, 12, c->layer == 1 ? "z" : "h", 2, odims);
}

int onnx_export(Model *m, const OnnxExportConfig *c, const char *path) {
    const ResNetSpec *sp = model_spec(m);
    ResNetSpec check;
    if (resnet_spec(&check, sp->arch, sp->stem, model_config(m)->width, c->image_size))
        return sc_error_prefix("export.image_size");
    PbBuf b = {0};
    pb_int(&b, 1, ONNX_IR_VERSION);        /* ModelProto.ir_version */
    pb_string(&b, 2, "simclr");            /* producer_name */
    pb_string(&b, 3, "0.1.0");            /* producer_version */
    if (c->doc) pb_string(&b, 6, c->doc);  /* doc_string */
    size_t gi = pb_begin(&b, 7);           /* graph */
    build_graph(&b, m, c);
    pb_end(&b, gi);
    size_t op = pb_begin(&b, 8);           /* opset_import {domain 1 = "" (ai.onnx), version 2} */
    pb_int(&b, 2, ONNX_OPSET);
    pb_end(&b, op);
    int rc = sc_write_file_atomic(path, b.data, b.n);
    pb_free(&b);
    return rc;
}
