"""The WMMSE policy (``tinyrrm export wmmse``) in the HIL firmware on the emulated core
(``--target``): the firmware matches the host build within float tolerance, every beam is
within its limit, bad input is one ERROR frame, and CORE/VECTORS are not served."""

import math

import numpy as np
import pytest

from tinyrrm.codegen import wmmse as W
from tinyrrm.codegen.host import input_bytes
from tinyrrm.hil.protocol import CORE, TargetError
from tinyrrm.hil.run import build_firmware, infer_scenes, open_target
from tinyrrm.training import scenes as sc

pytestmark = pytest.mark.slow
K_MAX, NT, ITERS = 10, 2, 4


@pytest.fixture(scope="module")
def gen(target, tmp_path_factory):
    return W.generate(target, tmp_path_factory.mktemp("wmmse_policy") / "wmmse", K_MAX, NT, ITERS)


@pytest.fixture(scope="module")
def client(target, port, gen, tmp_path_factory):
    if port is not None:
        pytest.skip("the WMMSE policy firmware is built here for QEMU")
    elf = build_firmware(target, gen, tmp_path_factory.mktemp("wmmse_policy_fw"))
    with open_target(target, elf) as c:
        c.hello()
        yield c


def test_hello_names_the_policy(client):
    f = client.hello().fields
    assert (f["prefix"], f["k_max"], f["nt"], f["steps"], f["iters"]) == ("wmmse", str(K_MAX), str(NT), "0", str(ITERS))


@pytest.mark.parametrize("K,mode,seed", [(K_MAX, "geometric", 981), (6, "iid", 982)])
def test_firmware_matches_host_build(client, gen, K, mode, seed):
    s = sc.generate(3, K, NT, seed, mode)
    V, _ = infer_scenes(client, s, None, progress=False)
    host = W.HostPolicy(gen)
    Vh = np.stack([host.infer(s.H[i] * math.sqrt(s.p_max / s.noise_var)) for i in range(s.N)]) * math.sqrt(s.p_max)
    # the FPU cores fuse the inner multiply-adds (the host does not): float rounding apart
    assert np.abs(V - Vh).max() <= 1e-4 * np.abs(Vh).max()
    assert np.all((np.abs(V.astype(np.complex128)) ** 2).sum(-1) <= s.p_max * (1 + 1e-5))


def test_bad_input_is_one_error(client):
    s = sc.generate(1, 5, NT, 983, "iid")
    H = s.H[0].copy()
    H[1, 3, 0] = np.nan
    with pytest.raises(TargetError, match="non-finite channel"):
        client.infer(input_bytes(H, np.zeros((5, 5), bool), K_MAX))
    raw = bytearray(input_bytes(s.H[0], np.zeros((5, 5), bool), K_MAX))
    raw[0:4] = (K_MAX + 1).to_bytes(4, "little")
    with pytest.raises(TargetError, match="k out of range"):
        client.infer(bytes(raw))
    with pytest.raises(TargetError, match="unknown type"):
        client.request(CORE, b"")
