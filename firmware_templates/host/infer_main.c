/* Host driver for benchmarks: read one <prefix>_input struct from a file,
 * run <prefix>_infer N times, write the <prefix>_output struct to a file.
 *   infer_main INPUT.bin N OUTPUT.bin
 * Build with -DPREFIX=lrmpgnn (or mpgnn) and the generated sources.
 * (Host tool: stdio is fine here, the model code itself has none.) */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define P(name) CAT(PREFIX, name)

static P(_input) in;
static P(_output) out;

int main(int argc, char **argv)
{
    FILE *f;
    long n, i;
    if (argc != 4) {
        fprintf(stderr, "usage: %s INPUT.bin N OUTPUT.bin\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL || fread(&in, sizeof in, 1, f) != 1) {
        fprintf(stderr, "%s: cannot read %lu bytes of input\n", argv[1], (unsigned long)sizeof in);
        return 2;
    }
    fclose(f);
    n = strtol(argv[2], NULL, 10);
    for (i = 0; i < n; ++i) {
        if (P(_infer)(&in, &out) != 0) {
            fprintf(stderr, "infer failed (k=%ld)\n", (long)in.k);
            return 1;
        }
    }
    f = fopen(argv[3], "wb");
    if (f == NULL || fwrite(&out, sizeof out, 1, f) != 1) {
        fprintf(stderr, "%s: cannot write output\n", argv[3]);
        return 2;
    }
    fclose(f);
    return 0;
}
