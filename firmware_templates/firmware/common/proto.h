/* tinyrrm HIL protocol v1 (docs/PROTOCOL.md): frame parser and builder.
 * Hardware-free: bytes in through proto_rx_byte(), bytes out through a
 * putc callback, so the same code builds for the host. */
#ifndef TR_PROTO_H
#define TR_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_SYNC0 0xA5u
#define PROTO_SYNC1 0x5Au
#define PROTO_HEADER_BYTES 6u /* type, seq, u32 length */

enum {
    PROTO_HELLO = 0x01,
    PROTO_CORE = 0x02,
    PROTO_INFER = 0x03,
    PROTO_VECTORS = 0x04,
    PROTO_STATS = 0x05,
    PROTO_ERROR = 0x7F,
    PROTO_RESPONSE = 0x80 /* response type = request type | 0x80 */
};

/* CRC-32 (IEEE 802.3), same as zlib.crc32(data, crc): start with crc = 0 */
uint32_t proto_crc32(uint32_t crc, const void *data, size_t n);

void proto_put_u32(uint8_t *p, uint32_t v);
uint32_t proto_get_u32(const uint8_t *p);

/* result of feeding one byte to the parser */
typedef enum {
    PROTO_RX_BUSY = 0, /* nothing yet */
    PROTO_RX_FRAME,    /* a complete frame with a good CRC is in the buffer */
    PROTO_RX_BAD_CRC,  /* complete frame, CRC mismatch */
    PROTO_RX_TOO_LONG  /* header announced more than the buffer holds */
} proto_rx_event;

typedef struct {
    uint8_t *buf;   /* payload storage */
    uint32_t cap;   /* its size: the target's max_payload */
    uint32_t state; /* internal */
    uint32_t pos;   /* bytes of the current field received */
    uint32_t crc;   /* running CRC over type..payload */
    uint8_t hdr[PROTO_HEADER_BYTES];
    uint8_t crc_bytes[4];
    uint8_t type, seq; /* valid once the header is in */
    uint32_t len;      /* payload length, valid once the header is in */
} proto_rx;

void proto_rx_init(proto_rx *rx, uint8_t *buf, uint32_t cap);
/* drop any partial frame and hunt for A5 5A */
void proto_rx_reset(proto_rx *rx);
/* 1 while a frame has started (sync seen): the inter-byte timeout applies */
int proto_rx_in_frame(const proto_rx *rx);
/* 1 once type and seq of the current frame are known */
int proto_rx_have_header(const proto_rx *rx);
proto_rx_event proto_rx_byte(proto_rx *rx, uint8_t b);

/* send one frame whose payload is a followed by b (either may be empty) */
typedef void (*proto_putc_fn)(uint8_t c);
void proto_send(proto_putc_fn put, uint8_t type, uint8_t seq, const void *a, uint32_t na,
                const void *b, uint32_t nb);

#endif /* TR_PROTO_H */
