/* Host check of <prefix>_infer's input validation: a NaN or Inf channel of an
 * active link, or one whose power overflows float, returns <PREFIX>_ERR_NONFINITE
 * and leaves the output as it was; inactive links are not read.
 * One line per case; exit code = number of cases that failed.
 * Build: cc -std=c99 -DPREFIX=lrmpgnn -DPREFIX_UC=LRMPGNN -I<gen> nonfinite_main.c
 *        <gen>/model.c <gen>/weights.c <gen>/kernels/(all .c) -lm */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define P(name) CAT(PREFIX, name)
#define PU(name) CAT(PREFIX_UC, name)

static P(_input) in;
static P(_output) out;

/* a scene every model accepts: small channels, every edge */
static void reset(void)
{
    size_t i;
    float *h = &in.h[0][0][0][0];
    in.k = PU(_K_MAX);
    for (i = 0; i < sizeof in.h / sizeof(float); ++i) {
        h[i] = (float)((int)(i % 11u) - 5) * 0.25f;
    }
    memset(in.edge_bits, 0xff, sizeof in.edge_bits);
}

/* run infer with h[t][r][a][c] = v and k links; 1 when rc and the output are as expected */
static int check(const char *name, int32_t k, int t, int r, int a, int c, float v, int want)
{
    static const unsigned char sentinel = 0x5a;
    size_t i;
    int rc, untouched = 1;
    reset();
    in.k = k;
    in.h[t][r][a][c] = v;
    memset(&out, sentinel, sizeof out);
    rc = P(_infer)(&in, &out);
    for (i = 0; i < sizeof out; ++i) {
        untouched &= ((const unsigned char *)&out)[i] == sentinel;
    }
    if (rc != want || (want != PU(_OK) && !untouched) || (want == PU(_OK) && untouched)) {
        printf("FAIL %-36s rc=%d (want %d), output %s\n", name, rc, want,
               untouched ? "untouched" : "written");
        return 0;
    }
    printf("ok   %-36s rc=%d\n", name, rc);
    return 1;
}

int main(void)
{
    const int K = PU(_K_MAX), last = PU(_K_MAX) - 1;
    int bad = 0;
    bad += !check("finite channels", K, 0, 1, 0, 0, 1.0f, PU(_OK));
    bad += !check("NaN cross channel", K, 0, 1, 0, 0, NAN, PU(_ERR_NONFINITE));
    bad += !check("NaN direct channel, imaginary", K, last, last, PU(_NT) - 1, 1, NAN,
                  PU(_ERR_NONFINITE));
    bad += !check("+Inf", K, 1, 0, 0, 1, INFINITY, PU(_ERR_NONFINITE));
    bad += !check("-Inf", K, last, 0, 0, 0, -INFINITY, PU(_ERR_NONFINITE));
    bad += !check("|h|^2 overflows float", K, 0, last, 0, 0, 1e30f, PU(_ERR_NONFINITE));
    bad += !check("NaN on an inactive link (t >= k)", K - 1, last, 0, 0, 0, NAN, PU(_OK));
    bad += !check("k = 0 before the channels", 0, 0, 1, 0, 0, NAN, PU(_ERR_K));
    printf("%s: %d case(s) failed\n", bad ? "FAIL" : "ok", bad);
    return bad;
}
