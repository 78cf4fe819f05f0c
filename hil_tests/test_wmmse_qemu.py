"""The C WMMSE on the emulated core (``--target``): the chip's build (fused multiply-add on
FPU cores, soft float on the M3) against training/wmmse.py, through the bench firmware."""

import numpy as np
import pytest

from tinyrrm.hil import wmmse_bench as wb
from tinyrrm.hil.qemu import Qemu
from tinyrrm.training import scenes as sc
from tinyrrm.training.wmmse import wmmse

K_MAX, NT = 8, 2


@pytest.fixture(scope="module")
def client(target, port, tmp_path_factory):
    if port is not None:
        pytest.skip("the WMMSE bench firmware runs under QEMU only")
    elf = wb.build(target, K_MAX, NT, tmp_path_factory.mktemp("wmmse_fw"))
    with Qemu(elf, wb.qemu_machine(target), timeout=120.0) as c:
        c.hello()
        yield c


@pytest.mark.parametrize("K,iters", [(8, 1), (8, 5), (5, 10)])
def test_chip_matches_numpy(client, K, iters):
    s = sc.generate(2, K, NT, 920 + K, "iid")
    w = np.random.default_rng(iters).uniform(0.2, 2.0, (2, K)).astype(np.float32)
    _, hist = wmmse(s.H, s.p_max, s.noise_var, w, max_iter=iters, tol=0.0, progress=False, return_history=True)
    for n in range(2):
        rc, _, wsr, v = wb.run_on_target(client, wb.abi_channels(s.H[n], s.p_max, s.noise_var, K_MAX), K, iters, w[n])
        assert rc == wb.ERR["ok"]
        assert abs(wsr - hist[n, -1]) <= 1e-4 * hist[n, -1]
        assert np.all((v.astype(np.float64) ** 2).sum(axis=(1, 2)) <= 1 + 1e-5)


def test_chip_refuses_nan(client):
    h = wb.abi_channels(sc.generate(1, 4, NT, 930, "iid").H[0], 1.0, 1.0, K_MAX)
    h[1, 2, 0, 1] = np.nan
    rc, _, _, v = wb.run_on_target(client, h, 4, 3)
    assert rc == wb.ERR["nonfinite"] and not v.any()
