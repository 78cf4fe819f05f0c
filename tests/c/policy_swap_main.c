/* The learned model and the WMMSE policy in one program, behind one caller: the same input
 * bytes go to both <prefix>_infer (-DLR=<prefix> -DWM=<prefix>, headers by path:
 * -DLR_MODEL_H='"lr/model.h"' -DWM_MODEL_H='"wm/model.h"'). Prints, per policy, the return
 * code and the largest beam power, then its refusal of k = 0. Exit code = failed checks. */
#include <stdio.h>
#include <string.h>

#include LR_MODEL_H
#include WM_MODEL_H

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define STR2(x) #x
#define STR(x) STR2(x)

static unsigned char in_bytes[sizeof(CAT(LR, _input))];   /* one input, as a firmware holds it */
static unsigned char out_bytes[sizeof(CAT(LR, _output))]; /* one output */

/* largest ||v_t||^2 of an output (K_MAX, NT, 2) floats */
static float max_power(const float *v, size_t links, size_t per_link)
{
    float best = 0.0f;
    size_t t, a;
    for (t = 0; t < links; ++t) {
        float p = 0.0f;
        for (a = 0; a < per_link; ++a)
            p += v[t * per_link + a] * v[t * per_link + a];
        if (p > best)
            best = p;
    }
    return best;
}

/* the caller: policy M on in_bytes -> out_bytes; adds failed checks to bad */
#define RUN(M, bad)                                                                                \
    do {                                                                                           \
        CAT(M, _input) in;                                                                         \
        CAT(M, _output) out;                                                                       \
        int rc;                                                                                    \
        float p;                                                                                   \
        memcpy(&in, in_bytes, sizeof in);                                                          \
        rc = CAT(M, _infer)(&in, &out);                                                            \
        memcpy(out_bytes, &out, sizeof out);                                                       \
        p = max_power(&out.v[0][0][0], sizeof out.v / sizeof out.v[0],                             \
                      sizeof out.v[0] / sizeof(float));                                            \
        printf("%s rc=%d max_power=%.6f\n", STR(M), rc, (double)p);                                \
        bad += rc != 0 || !(p > 0.0f) || !(p <= 1.00001f);                                         \
        in.k = 0;                                                                                  \
        rc = CAT(M, _infer)(&in, &out);                                                            \
        printf("%s k=0 rc=%d\n", STR(M), rc);                                                      \
        bad += rc != -1;                                                                           \
    } while (0)

int main(void)
{
    static CAT(LR, _input) in;
    unsigned s = 12345u;
    size_t i, t, n = sizeof in.h / sizeof(float), k_max = sizeof in.h / sizeof in.h[0];
    float *h = &in.h[0][0][0][0];
    int bad = 0;
    /* one ABI: the same sizes */
    bad += sizeof(CAT(LR, _input)) != sizeof(CAT(WM, _input));
    bad += sizeof(CAT(LR, _output)) != sizeof(CAT(WM, _output));
    in.k = 20;
    for (i = 0; i < n; ++i) { /* a fixed pseudo-random scene with strong direct links */
        s = s * 1103515245u + 12345u;
        h[i] = (float)((int)(s >> 16) % 2001 - 1000) * 0.001f;
    }
    for (t = 0; t < k_max; ++t)
        in.h[t][t][0][0] += 30.0f;
    memset(in.edge_bits, 0xFF, sizeof in.edge_bits);
    memcpy(in_bytes, &in, sizeof in);
    RUN(LR, bad);
    RUN(WM, bad);
    printf("%s\n", bad ? "FAILED" : "ok");
    return bad;
}
