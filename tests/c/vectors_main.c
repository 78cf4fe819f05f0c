/* Host check of a generated folder: run every test vector through the core
 * and compare rows 0..k-1 with TFLite Micro's expected bytes. One line per
 * vector; exit code = number of vectors with a mismatch.
 * Build: cc -std=c99 -DPREFIX=lrmpgnn -I<gen> vectors_main.c <gen>/model.c
 *        <gen>/weights.c <gen>/test_vectors.c <gen>/kernels/(all .c) -lm */
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "test_vectors.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define P(name) CAT(PREFIX, name)

/* one int8 per float of the output struct: K_MAX rows of 2*Nt */
#define OUT_LEN (sizeof(((P(_output) *)0)->v) / sizeof(float))
#define ROW_LEN (sizeof(((P(_output) *)0)->v[0]) / sizeof(float))
#define N_VEC ((int)(sizeof P(_vectors) / sizeof P(_vectors)[0]))

int main(void)
{
    static int8_t out[OUT_LEN];
    int bad = 0;
    int i;
    for (i = 0; i < N_VEC; ++i) {
        const P(_vector) *v = &P(_vectors)[i];
        int diff = 0;
        int n;
        int rc;
        memset(out, 0, sizeof out);
        rc = P(_core)(v->x_q, v->e_q, v->edge_bits, v->k, out);
        for (n = 0; n < v->k * (int)ROW_LEN; ++n) {
            diff += out[n] != v->expected[n];
        }
        printf("%-32s k=%2d rc=%d mismatches=%d\n", v->name, (int)v->k, rc, diff);
        bad += (rc != 0 || diff != 0);
    }
    printf("%s: %d of %d vectors bit-exact\n", bad ? "FAIL" : "ok", N_VEC - bad, N_VEC);
    return bad;
}
