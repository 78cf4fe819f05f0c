/* reads "x m e" lines, prints tr_mbqm_fast(x, m, e) and tr_mbqm(x, m, -e) per line */
#include <inttypes.h>
#include <stdio.h>

#include "kernels/tr_requant.h"

int main(void)
{
    long long x, m, e;
    while (scanf("%lld %lld %lld", &x, &m, &e) == 3) {
        printf("%" PRId32 " %" PRId32 " %" PRId32 "\n",
               tr_mbqm_fast((int32_t)x, (int32_t)m, (int32_t)e),
               tr_mbqm((int32_t)x, (int32_t)m, (int32_t)-e), tr_sat8((int32_t)x));
    }
    return 0;
}
