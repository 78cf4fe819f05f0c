/* tr_dot_max_s8 -- the wide message layer fused with the max over senders.
 *
 *   best[o] = max_j sum_i w[o][i] * src[j][i]        (no bias, no requantization)
 *
 *   w    int8 [d_out][d_in], row-major (the .tflite's FULLY_CONNECTED weights)
 *   src  int16 [n_src][TR_FC_SCRATCH(d_in)], each row packed by tr_pack_s16
 *        (zero point removed); n_src >= 1
 *   best int32 [d_out]
 *
 * Channels outer, senders inner: a weight row is unpacked once and stays in
 * registers while every sender's message meets it. Exact: |dot| <= d_in * 127 * 255.
 * Speed (d_in == 4, the LR-MPGNN's wide layer): on Thumb-2 DSP cores a pass
 * over two channels and two senders is 19 instructions for 16 MACs when src
 * is word-aligned (LDM; otherwise the C loop, 23); the max costs USAT + SUB
 * on a negated running max instead of CMP + IT + MOV.
 * Bias, requantization and ReLU are monotone and follow once per receiver
 * (tr_agg_s8), which makes max-then-requantize equal TFLM's requantize-then-max.
 */
#ifndef TR_DOT_MAX_S8_H
#define TR_DOT_MAX_S8_H

#include <stdint.h>

void tr_dot_max_s8(const int8_t *w, int32_t d_in, int32_t d_out, const int16_t *src, int32_t n_src,
                   int32_t *best);

#endif /* TR_DOT_MAX_S8_H */
