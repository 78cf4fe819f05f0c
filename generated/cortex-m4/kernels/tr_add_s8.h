/* tr_add_s8 -- int8 ADD of two vectors (TFLM's int8 ADD, per tensor).
 *
 *   a, b  int8 [n] (operand order as in the .tflite: a is input 1)
 *   y     int8 [n] (may alias a or b)
 */
#ifndef TR_ADD_S8_H
#define TR_ADD_S8_H

#include <stdint.h>

#include "tr_types.h"

void tr_add_s8(const tr_add *p, const int8_t *a, const int8_t *b, int32_t n, int8_t *y);

#endif /* TR_ADD_S8_H */
