/* Bench firmware for the WMMSE kernels on one core: serves the framed HIL
 * protocol (proto.c) with HELLO, STATS and one request of its own.
 *
 * Dense (default build): RUN (0x10), wmmse_f32 alone.
 *   request:  i32 k, i32 iters, u32 flags (bit 0: alpha given),
 *             float alpha[WMMSE_F32_K_MAX], float
 * h[WMMSE_F32_K_MAX][WMMSE_F32_K_MAX][WMMSE_F32_NT][2] response: i32 rc, u32 ticks_lo, u32
 * ticks_hi, float wsr, float v[WMMSE_F32_K_MAX][WMMSE_F32_NT][2]
 *
 * Sparse (-DWMMSE_BENCH_SPARSE, Makefile BENCH=sparse): RUN_SPARSE (0x11), rank
 * the CSI's m strongest interferers per receiver (wmmse_rank_f32), then the
 * sparse WMMSE on them (wmmse_sparse_f32), each call timed apart; NT = 2.
 *   request:  i32 k, i32 iters, i32 m, u32 flags (bit 0: alpha given),
 *             float alpha[WMMSE_F32_K_MAX], float h[WMMSE_F32_K_MAX][WMMSE_F32_K_MAX][2][2]
 *   response: i32 rc (the ranking's if it failed, else the WMMSE's),
 *             u32 rank_ticks_lo, rank_ticks_hi, wmmse_ticks_lo, wmmse_ticks_hi,
 *             float wsr, float v[WMMSE_F32_K_MAX][2][2]
 *   m is clamped to k - 1 (all interferers) as the ranking does.
 *
 * ticks = SysTick ticks of the kernel calls alone; STATS gives the boot
 * calibration (ticks.c, shared with the HIL firmware) that turns them into
 * instructions under QEMU -icount. Build with firmware_templates/wmmse/Makefile. */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "proto.h"
#include "ticks.h"
#include "uart.h"
#ifdef WMMSE_BENCH_SPARSE
#include "wmmse_rank_f32.h"
#include "wmmse_sparse_f32.h"
#else
#include "wmmse_f32.h"
#endif

#ifndef TR_CORE_NAME
#define TR_CORE_NAME "unknown"
#endif

#define STR2(x) #x
#define STR(x) STR2(x)

#define H_FLOATS (WMMSE_F32_K_MAX * WMMSE_F32_K_MAX * WMMSE_F32_NT * 2)
#define V_FLOATS (WMMSE_F32_K_MAX * WMMSE_F32_NT * 2)
#ifdef WMMSE_BENCH_SPARSE
#define PROTO_RUN 0x11u /* RUN_SPARSE */
#define RUN_HEAD 4      /* k, iters, m, flags */
#define KERNEL "wmmse_sparse_f32"
#define SCRATCH_BYTES WMMSE_SPARSE_F32_SCRATCH_BYTES
static int16_t idx[WMMSE_F32_K_MAX * (WMMSE_F32_K_MAX - 1)]; /* (K_MAX, m <= K_MAX - 1) */
#else
#define PROTO_RUN 0x10u
#define RUN_HEAD 3 /* k, iters, flags */
#define KERNEL "wmmse_f32"
#define SCRATCH_BYTES WMMSE_F32_SCRATCH_BYTES
#endif
#define RUN_REQ_BYTES (4u * (RUN_HEAD + WMMSE_F32_K_MAX + H_FLOATS))

/* the request lands here; the struct aligns the floats */
static union {
    struct {
        int32_t k, iters;
#ifdef WMMSE_BENCH_SPARSE
        int32_t m;
#endif
        uint32_t flags;
        float alpha[WMMSE_F32_K_MAX];
        float h[H_FLOATS]; /* (K_MAX, K_MAX, NT, 2) */
    } run;
    uint8_t bytes[RUN_REQ_BYTES];
} rx_buf;
static float v_out[V_FLOATS];                        /* (K_MAX, NT, 2) */
static float scratch[SCRATCH_BYTES / sizeof(float)]; /* float-aligned */
static proto_rx rx;

/* ---- requests ---------------------------------------------------------------------- */

static void send_error(uint8_t seq, const char *reason)
{
    proto_send(uart_putc, PROTO_ERROR, seq, reason, (uint32_t)strlen(reason), 0, 0);
}

static void do_hello(uint8_t seq)
{
    static const char s[] =
        "proto=1;prefix=" KERNEL
        ";k_max=" STR(WMMSE_F32_K_MAX) ";nt=" STR(WMMSE_F32_NT) ";core=" TR_CORE_NAME;
    proto_send(uart_putc, PROTO_HELLO | PROTO_RESPONSE, seq, s, sizeof s - 1u, 0, 0);
}

static void do_stats(uint8_t seq)
{
    uint8_t out[16];
    proto_put_u32(&out[0], TR_STACK_SIZE);
    proto_put_u32(&out[4], 0u);
    proto_put_u32(&out[8], tr_calib_ticks);
    proto_put_u32(&out[12], tr_calib_instructions);
    proto_send(uart_putc, PROTO_STATS | PROTO_RESPONSE, seq, out, sizeof out, 0, 0);
}

static void put_ticks(uint8_t *p, uint64_t ticks)
{
    proto_put_u32(&p[0], (uint32_t)ticks);
    proto_put_u32(&p[4], (uint32_t)(ticks >> 32));
}

static void do_run(uint8_t seq)
{
    const float *alpha = (rx_buf.run.flags & 1u) ? rx_buf.run.alpha : 0;
    float wsr = 0.0f;
    uint64_t t0, t1;
    int rc;
#ifdef WMMSE_BENCH_SPARSE
    uint8_t hdr[24];
    int32_t k = rx_buf.run.k, m = rx_buf.run.m;
    uint64_t t2;

    memset(v_out, 0, sizeof v_out);
    if (k >= 2 && m > k - 1)
        m = k - 1;
    t0 = tr_ticks_now();
    rc = wmmse_rank_f32(rx_buf.run.h, k, m, idx);
    t1 = tr_ticks_now();
    if (rc == WMMSE_RANK_F32_OK)
        rc = wmmse_sparse_f32(rx_buf.run.h, k, m, idx, alpha, 0, 0, 0, rx_buf.run.iters, scratch,
                              v_out, &wsr);
    t2 = tr_ticks_now();
    put_ticks(&hdr[12], t2 - t1);
#else
    uint8_t hdr[16];

    memset(v_out, 0, sizeof v_out);
    t0 = tr_ticks_now();
    rc = wmmse_f32(rx_buf.run.h, rx_buf.run.k, alpha, 0, 0, rx_buf.run.iters, scratch, v_out, &wsr);
    t1 = tr_ticks_now();
#endif
    proto_put_u32(&hdr[0], (uint32_t)rc);
    put_ticks(&hdr[4], t1 - t0);
    memcpy(&hdr[sizeof hdr - 4], &wsr, 4);
    proto_send(uart_putc, PROTO_RUN | PROTO_RESPONSE, seq, hdr, sizeof hdr, v_out, sizeof v_out);
}

void tr_fault(void)
{
    send_error(0, "fault");
    for (;;)
        ;
}

int main(void)
{
    uart_init();
    tr_ticks_init();
    proto_rx_init(&rx, rx_buf.bytes, RUN_REQ_BYTES);

    for (;;) {
        int c = uart_getc_nonblock();
        if (c < 0)
            continue;
        switch (proto_rx_byte(&rx, (uint8_t)c)) {
        case PROTO_RX_FRAME:
            if (rx.type == PROTO_HELLO && rx.len == 0)
                do_hello(rx.seq);
            else if (rx.type == PROTO_STATS && rx.len == 0)
                do_stats(rx.seq);
            else if (rx.type == PROTO_RUN && rx.len == RUN_REQ_BYTES)
                do_run(rx.seq);
            else
                send_error(rx.seq, "unknown type or wrong payload size");
            break;
        case PROTO_RX_BAD_CRC: send_error(rx.seq, "bad crc"); break;
        case PROTO_RX_TOO_LONG: send_error(rx.seq, "length above max_payload"); break;
        default: break;
        }
    }
}
