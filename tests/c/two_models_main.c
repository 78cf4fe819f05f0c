/* Two generated models in one program: -DMODEL_A=<prefix a> -DMODEL_B=<prefix b>,
 * headers by path (-DA_MODEL_H='"a/model.h"' -DA_VECTORS_H='"a/test_vectors.h"', B_...),
 * one copy of the shared kernels. Each model runs its own test vectors through its core
 * (TFLite Micro's bytes) and one inference of a fixed scene, printed as hex floats.
 * Exit code = number of failed vectors and inferences, over both models. */
#include <stdio.h>
#include <string.h>

#include A_MODEL_H
#include A_VECTORS_H
#include B_MODEL_H
#include B_VECTORS_H

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define STR2(x) #x
#define STR(x) STR2(x)

/* the same checks for model M (a prefix) */
#define RUN(M)                                                                                     \
    do {                                                                                           \
        static CAT(M, _input) in;                                                                  \
        static CAT(M, _output) out;                                                                \
        static int8_t o[sizeof out.v / sizeof(float)];                                             \
        const int rows = (int)(sizeof out.v[0] / sizeof(float));                                   \
        const int n_vec = (int)(sizeof CAT(M, _vectors) / sizeof CAT(M, _vectors)[0]);             \
        size_t i;                                                                                  \
        int v, j, rc;                                                                              \
        for (v = 0; v < n_vec; ++v) {                                                              \
            const CAT(M, _vector) *t = &CAT(M, _vectors)[v];                                       \
            int diff = 0;                                                                          \
            memset(o, 0, sizeof o);                                                                \
            rc = CAT(M, _core)(t->x_q, t->e_q, t->edge_bits, t->k, o);                             \
            for (j = 0; j < t->k * rows; ++j) {                                                    \
                diff += o[j] != t->expected[j];                                                    \
            }                                                                                      \
            bad += rc != 0 || diff != 0;                                                           \
            printf("%s vector %d rc=%d mismatches=%d\n", STR(M), v, rc, diff);                     \
        }                                                                                          \
        in.k = (int32_t)(sizeof in.h / sizeof in.h[0]);                                            \
        for (i = 0; i < sizeof in.h / sizeof(float); ++i) {                                        \
            (&in.h[0][0][0][0])[i] = (float)((int)(i % 11u) - 5) * 0.25f;                          \
        }                                                                                          \
        memset(in.edge_bits, 0xff, sizeof in.edge_bits);                                           \
        rc = CAT(M, _infer)(&in, &out);                                                            \
        bad += rc != 0;                                                                            \
        printf("%s infer rc=%d v=", STR(M), rc);                                                   \
        for (i = 0; i < sizeof out.v / sizeof(float); ++i) {                                       \
            printf(" %a", (double)(&out.v[0][0][0])[i]);                                           \
        }                                                                                          \
        printf("\n");                                                                              \
    } while (0)

int main(void)
{
    int bad = 0;
    RUN(MODEL_A);
    RUN(MODEL_B);
    printf("%s\n", bad ? "FAIL" : "ok");
    return bad;
}
