/* tinyrrm HIL firmware: serves docs/PROTOCOL.md (v1) over the board's UART.
 * Build with -DPREFIX=<prefix> -DPREFIX_UC=<PREFIX> (GEN/model.mk: the generated model's
 * C prefix; every call goes through P()/PU()) -DTR_CORE_NAME='"cortex-m4"'
 * -DTR_CORE_HZ=25000000 and the generated model sources on the include path. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "model.h"
#include "proto.h"
#include "ticks.h"
#include "uart.h"

#if !defined(PREFIX) || !defined(PREFIX_UC)
#error                                                                                             \
    "build with -DPREFIX=<the model's prefix> -DPREFIX_UC=<its upper case> (the Makefile reads GEN/model.mk)"
#endif
#ifndef TR_CORE_NAME
#define TR_CORE_NAME "unknown"
#endif
#ifndef TR_CORE_HZ
#define TR_CORE_HZ 25000000u
#endif

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define P(name) CAT(PREFIX, name)     /* lrmpgnn_core */
#define PU(name) CAT(PREFIX_UC, name) /* LRMPGNN_K_MAX */

/* a policy without an int8 core (model.h: <PREFIX>_NO_CORE 1, e.g. WMMSE) serves
 * HELLO, INFER and STATS; CORE and VECTORS answer "unknown type" */
#if PU(_NO_CORE)
#define HAS_CORE 0
#else
#define HAS_CORE 1
#include "test_vectors.h"
#endif
#define STR2(x) #x
#define STR(x) STR2(x)

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP && !(defined(TR_NO_DSP) && TR_NO_DSP)
#define TR_DSP 1
#else
#define TR_DSP 0
#endif

/* ---- sizes from model.h ---------------------------------------------------- */

#define K_MAX PU(_K_MAX)
#define NT PU(_NT)
#define EDGE_BYTES PU(_EDGE_BYTES)
#define X_BYTES (K_MAX * 4 * NT)         /* int8 x_q[K_MAX][4Nt] */
#define E_BYTES (K_MAX * K_MAX * 2 * NT) /* int8 e_q[K_MAX][K_MAX][2Nt] */
#define O_BYTES (K_MAX * 2 * NT)         /* int8 o_q[K_MAX][2Nt] */
#define CORE_REQ_BYTES (4u + X_BYTES + E_BYTES + EDGE_BYTES)
#define INFER_REQ_BYTES ((uint32_t)sizeof(P(_input)))
#if HAS_CORE
#define MAX_PAYLOAD (CORE_REQ_BYTES > INFER_REQ_BYTES ? CORE_REQ_BYTES : INFER_REQ_BYTES)
#else
#define MAX_PAYLOAD INFER_REQ_BYTES
#endif

#define TIMEOUT_TICKS ((uint64_t)TR_CORE_HZ / 10u) /* 100 ms between two bytes */

/* ---- static state (no malloc) ---------------------------------------------- */

/* request payloads land here; the union aligns the INFER struct */
static union {
    P(_input) in;
    uint8_t bytes[MAX_PAYLOAD];
} rx_buf;
static P(_output) infer_out;
#if HAS_CORE
static int8_t core_out[O_BYTES];
#endif
static proto_rx rx;

/* ---- stack painting ------------------------------------------------------------ */

static uint32_t stack_peak(void)
{
    const uint32_t *p = __stack_limit;
    while (p < __stack_top && *p == TR_STACK_PAINT)
        ++p;
    return (uint32_t)((uintptr_t)__stack_top - (uintptr_t)p);
}

/* ---- responses ------------------------------------------------------------------- */

static void send(uint8_t type, uint8_t seq, const void *a, uint32_t na, const void *b, uint32_t nb)
{
    proto_send(uart_putc, type, seq, a, na, b, nb);
}

static void send_error(uint8_t seq, const char *reason)
{
    send(PROTO_ERROR, seq, reason, (uint32_t)strlen(reason), 0, 0);
}

/* rc, ticks_lo, ticks_hi */
static void put_result(uint8_t *hdr, int32_t rc, uint64_t ticks)
{
    proto_put_u32(hdr, (uint32_t)rc);
    proto_put_u32(hdr + 4, (uint32_t)ticks);
    proto_put_u32(hdr + 8, (uint32_t)(ticks >> 32));
}

static char *append(char *p, const char *s)
{
    while (*s)
        *p++ = *s++;
    return p;
}

static char *append_u32(char *p, uint32_t v)
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static void do_hello(uint8_t seq)
{
    char s[192];
    char *p = s;
    p = append(p, "proto=1;prefix=" STR(PREFIX) ";k_max=");
    p = append_u32(p, K_MAX);
    p = append(p, ";nt=");
    p = append_u32(p, NT);
#if HAS_CORE
    p = append(p, ";steps=");
    p = append_u32(p, PU(_STEPS));
#else
    p = append(p, ";steps=0;iters=");
    p = append_u32(p, (uint32_t)PU(_DEFAULT_ITERS));
#endif
    p = append(p, ";max_payload=");
    p = append_u32(p, MAX_PAYLOAD);
    p = append(p, TR_DSP ? ";dsp=1" : ";dsp=0");
    p = append(p, ";core=" TR_CORE_NAME ";stack=");
    p = append_u32(p, TR_STACK_SIZE);
    p = append(p, ";hz=");
    p = append_u32(p, TR_CORE_HZ);
    send(PROTO_HELLO | PROTO_RESPONSE, seq, s, (uint32_t)(p - s), 0, 0);
}

#if HAS_CORE
static void do_core(uint8_t seq)
{
    const uint8_t *b = rx_buf.bytes;
    uint8_t hdr[12];
    int32_t k, rc;
    uint64_t t0, t1;

    memcpy(&k, b, 4);
    memset(core_out, 0, sizeof core_out);
    t0 = tr_ticks_now();
    rc = P(_core)((const int8_t *)(b + 4), (const int8_t *)(b + 4 + X_BYTES),
                  b + 4 + X_BYTES + E_BYTES, k, core_out);
    t1 = tr_ticks_now();
    put_result(hdr, rc, t1 - t0);
    send(PROTO_CORE | PROTO_RESPONSE, seq, hdr, sizeof hdr, core_out, sizeof core_out);
}

#endif

/* the ERROR reason for an input <prefix>_infer refuses (its return codes, model.h) */
static const char *infer_refusal(int32_t rc)
{
    if (rc == PU(_ERR_K))
        return "k out of range";
    if (rc == PU(_ERR_NONFINITE))
        return "non-finite channel (NaN or Inf, or |h|^2 overflows float)";
    return "input refused";
}

static void do_infer(uint8_t seq)
{
    uint8_t hdr[12];
    int32_t rc;
    uint64_t t0, t1;

    memset(&infer_out, 0, sizeof infer_out);
    t0 = tr_ticks_now();
    rc = P(_infer)(&rx_buf.in, &infer_out);
    t1 = tr_ticks_now();
    if (rc != PU(_OK)) {
        send_error(seq, infer_refusal(rc));
        return;
    }
    put_result(hdr, rc, t1 - t0);
    send(PROTO_INFER | PROTO_RESPONSE, seq, hdr, sizeof hdr, &infer_out, sizeof infer_out);
}

#if HAS_CORE
static void do_vectors(uint8_t seq)
{
    /* u32 n, u32 n_exact, n x u32 mismatching bytes */
    static uint8_t out[4u * (2u + PU(_N_VECTORS))];
    uint32_t i, j, n_exact = 0;

    for (i = 0; i < PU(_N_VECTORS); ++i) {
        const P(_vector) *v = &P(_vectors)[i];
        uint32_t rows = (v->k >= 1 && v->k <= K_MAX) ? (uint32_t)v->k : K_MAX;
        uint32_t bad = 0;
        int rc;
        memset(core_out, 0, sizeof core_out);
        rc = P(_core)(v->x_q, v->e_q, v->edge_bits, v->k, core_out);
        for (j = 0; j < rows * 2u * NT; ++j)
            bad += core_out[j] != v->expected[j];
        if (rc != 0)
            bad = rows * 2u * NT; /* a refused vector counts as all wrong */
        n_exact += bad == 0;
        proto_put_u32(&out[8 + 4 * i], bad);
    }
    proto_put_u32(&out[0], PU(_N_VECTORS));
    proto_put_u32(&out[4], n_exact);
    send(PROTO_VECTORS | PROTO_RESPONSE, seq, out, sizeof out, 0, 0);
}

#endif

static void do_stats(uint8_t seq)
{
    uint8_t out[16];
    proto_put_u32(&out[0], TR_STACK_SIZE);
    proto_put_u32(&out[4], stack_peak());
    proto_put_u32(&out[8], tr_calib_ticks);
    proto_put_u32(&out[12], tr_calib_instructions);
    send(PROTO_STATS | PROTO_RESPONSE, seq, out, sizeof out, 0, 0);
}

static void dispatch(uint8_t type, uint8_t seq, uint32_t len)
{
    uint32_t want;
    switch (type) {
    case PROTO_HELLO:
    case PROTO_STATS: want = 0; break;
#if HAS_CORE
    case PROTO_VECTORS: want = 0; break;
    case PROTO_CORE: want = CORE_REQ_BYTES; break;
#endif
    case PROTO_INFER: want = INFER_REQ_BYTES; break;
    default: send_error(seq, "unknown type"); return;
    }
    if (len != want) {
        send_error(seq, "wrong payload size");
        return;
    }
    switch (type) {
    case PROTO_HELLO: do_hello(seq); break;
#if HAS_CORE
    case PROTO_CORE: do_core(seq); break;
    case PROTO_VECTORS: do_vectors(seq); break;
#endif
    case PROTO_INFER: do_infer(seq); break;
    default: do_stats(seq); break;
    }
}

void tr_fault(void)
{
    send_error(0, "fault");
    for (;;)
        ;
}

int main(void)
{
    uint64_t last = 0;

    uart_init();
    tr_ticks_init();
    proto_rx_init(&rx, rx_buf.bytes, MAX_PAYLOAD);

    for (;;) {
        int c = uart_getc_nonblock();
        if (c < 0) {
            /* inside a frame, a silent gap over 100 ms aborts it */
            if (proto_rx_in_frame(&rx) && tr_ticks_now() - last > TIMEOUT_TICKS) {
                send_error(proto_rx_have_header(&rx) ? rx.seq : 0, "truncated frame");
                proto_rx_reset(&rx);
            }
            continue;
        }
        last = tr_ticks_now();
        switch (proto_rx_byte(&rx, (uint8_t)c)) {
        case PROTO_RX_FRAME: dispatch(rx.type, rx.seq, rx.len); break;
        case PROTO_RX_BAD_CRC: send_error(rx.seq, "bad crc"); break;
        case PROTO_RX_TOO_LONG: send_error(rx.seq, "length above max_payload"); break;
        default: break;
        }
    }
}
