/* onnx_export.h - the encoder (and optionally the projection head) as an ONNX model for
 * inference elsewhere (onnxruntime, OpenCV dnn, TensorRT, ...).
 *
 *     OnnxExportConfig c; onnx_export_config_default(&c);
 *     c.layer = FEATURES_H; c.image_size = 96;
 *     c.normalize = 1; memcpy(c.mean, ac.mean, 12); memcpy(c.std, ac.std, 12);
 *     if (onnx_export(m, &c, "encoder.onnx")) sc_fatal("%s", sc_error());
 *
 * The graph (opset 13, IR version 7):
 *   input  "input"  float32 (batch, 3, S, S): RGB, NCHW, pixel / 255 in [0, 1], resized to S
 *          (batch is symbolic: any batch size);
 *   [Sub mean, Mul 1/std]   when the model was trained with --normalize (the graph normalises:
 *                            callers always feed [0, 1] pixels);
 *   Conv (BatchNorm folded in: W' = W * gamma / sqrt(var + eps), b = beta - mean * that scale),
 *   Relu, MaxPool, Add, GlobalAveragePool, Flatten -> output "h" (batch, D);
 *   with layer z: Gemm (+ folded BatchNorm1d) / Relu of the head -> output "z" (batch, out_dim).
 * That is inference mode: BN uses its running statistics, as `simclr features` does. The
 * output matches `simclr features` up to float rounding of the fold (tests: 1e-4 relative).
 * Written atomically (sc_atomic_open/commit).
 */
#ifndef SIMCLR_ONNX_EXPORT_H
#define SIMCLR_ONNX_EXPORT_H

#include "model.h"

typedef struct {
    int layer;             /* 0: h, 1: z (FEATURES_H / FEATURES_Z) */
    int image_size;        /* S of the declared input */
    int normalize;         /* 1: the graph subtracts mean and divides by std */
    float mean[3], std[3];
    const char *doc;       /* free text stored as the model's doc_string (may be NULL) */
} OnnxExportConfig;

void onnx_export_config_default(OnnxExportConfig *c);
/* Writes the ONNX file; 0, or -1 with sc_error() set (the file is then not created). */
int onnx_export(Model *m, const OnnxExportConfig *c, const char *path);

#endif
