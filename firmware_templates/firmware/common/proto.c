/* tinyrrm HIL protocol v1: framing and CRC-32. */
#include "proto.h"

/* CRC-32, reflected polynomial 0xEDB88320, one nibble per step (64-byte table) */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
    0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t proto_crc32(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
        crc = (crc >> 4) ^ crc_nibble[crc & 15u];
    }
    return ~crc;
}

void proto_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

uint32_t proto_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* parser states */
enum { S_HUNT0, S_HUNT1, S_HEADER, S_PAYLOAD, S_CRC };

void proto_rx_init(proto_rx *rx, uint8_t *buf, uint32_t cap)
{
    rx->buf = buf;
    rx->cap = cap;
    proto_rx_reset(rx);
}

void proto_rx_reset(proto_rx *rx)
{
    rx->state = S_HUNT0;
    rx->pos = 0;
    rx->type = 0;
    rx->seq = 0;
    rx->len = 0;
}

int proto_rx_in_frame(const proto_rx *rx)
{
    return rx->state != S_HUNT0;
}

int proto_rx_have_header(const proto_rx *rx)
{
    return rx->state == S_PAYLOAD || rx->state == S_CRC;
}

proto_rx_event proto_rx_byte(proto_rx *rx, uint8_t b)
{
    switch (rx->state) {
    case S_HUNT0:
        if (b == PROTO_SYNC0)
            rx->state = S_HUNT1;
        return PROTO_RX_BUSY;
    case S_HUNT1:
        if (b == PROTO_SYNC1) {
            rx->state = S_HEADER;
            rx->pos = 0;
        } else if (b != PROTO_SYNC0) {
            rx->state = S_HUNT0; /* A5 A5 5A still syncs */
        }
        return PROTO_RX_BUSY;
    case S_HEADER:
        rx->hdr[rx->pos++] = b;
        if (rx->pos < PROTO_HEADER_BYTES)
            return PROTO_RX_BUSY;
        rx->type = rx->hdr[0];
        rx->seq = rx->hdr[1];
        rx->len = proto_get_u32(&rx->hdr[2]);
        rx->crc = proto_crc32(0, rx->hdr, PROTO_HEADER_BYTES);
        rx->pos = 0;
        if (rx->len > rx->cap) {
            rx->state = S_HUNT0; /* the announced payload is hunted through */
            return PROTO_RX_TOO_LONG;
        }
        rx->state = rx->len ? S_PAYLOAD : S_CRC;
        return PROTO_RX_BUSY;
    case S_PAYLOAD:
        /* the CRC runs byte by byte as the payload arrives: run over 40 KB at once after the
           last byte it takes ~35 ms at 16 MHz, and a UART that holds one byte (STM32F4) would
           lose the CRC bytes behind it at 115200 baud (87 us a byte) */
        rx->buf[rx->pos++] = b;
        rx->crc = proto_crc32(rx->crc, &b, 1);
        if (rx->pos == rx->len) {
            rx->state = S_CRC;
            rx->pos = 0;
        }
        return PROTO_RX_BUSY;
    default: /* S_CRC */
        rx->crc_bytes[rx->pos++] = b;
        if (rx->pos < 4)
            return PROTO_RX_BUSY;
        rx->state = S_HUNT0;
        rx->pos = 0;
        return proto_get_u32(rx->crc_bytes) == rx->crc ? PROTO_RX_FRAME : PROTO_RX_BAD_CRC;
    }
}

static uint32_t send_bytes(proto_putc_fn put, uint32_t crc, const void *data, uint32_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    uint32_t i;
    for (i = 0; i < n; ++i)
        put(p[i]);
    return proto_crc32(crc, data, n);
}

void proto_send(proto_putc_fn put, uint8_t type, uint8_t seq, const void *a, uint32_t na,
                const void *b, uint32_t nb)
{
    uint8_t hdr[PROTO_HEADER_BYTES];
    uint8_t tail[4];
    uint32_t crc;

    hdr[0] = type;
    hdr[1] = seq;
    proto_put_u32(&hdr[2], na + nb);
    put(PROTO_SYNC0);
    put(PROTO_SYNC1);
    crc = send_bytes(put, 0, hdr, sizeof hdr);
    if (na)
        crc = send_bytes(put, crc, a, na);
    if (nb)
        crc = send_bytes(put, crc, b, nb);
    proto_put_u32(tail, crc);
    send_bytes(put, 0, tail, sizeof tail);
}
