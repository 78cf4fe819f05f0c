/* wmmse_sizes.h: the compile-time sizes every WMMSE kernel is built with, from
 * -DWMMSE_F32_K_MAX=.. -DWMMSE_F32_NT=.. or, in a generated folder, from the
 * wmmse_config.h beside the kernels. Each kernel's header checks its own ranges.
 *     WMMSE_F32_K_MAX  link capacity of h and v (the arrays' stride)
 *     WMMSE_F32_NT     transmit antennas
 */
#ifndef WMMSE_SIZES_H
#define WMMSE_SIZES_H

#ifndef WMMSE_F32_K_MAX
#include "wmmse_config.h" /* a generated folder's sizes */
#endif
#ifndef WMMSE_F32_K_MAX
#error "WMMSE_F32_K_MAX (link capacity) is not set"
#endif
#ifndef WMMSE_F32_NT
#error "WMMSE_F32_NT (transmit antennas) is not set"
#endif

#endif /* WMMSE_SIZES_H */
