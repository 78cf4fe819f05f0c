"""HIL suite options: ``pytest hil_tests --target cortex-m4 [--port /dev/ttyACM0]``.

Needs ``tinyrrm hil-prepare --target T`` once (reference beamformers from the
full environment); then only numpy, the cross compiler and QEMU.
"""

import pytest

from tinyrrm.codegen.targets import TARGETS


def pytest_addoption(parser):
    parser.addoption("--target", default="cortex-m4", help="core: " + ", ".join(TARGETS))
    parser.addoption("--port", default=None, help="a real board's serial port instead of QEMU")
    parser.addoption("--hil-dir", default=None, help="folder of tinyrrm hil-prepare (default build/hil/<target>)")
    parser.addoption(
        "--update-report",
        action="store_true",
        help="also write the report to reports/hil/<target>.{json,md,png} (make hil does); "
        "without it the run writes under build/hil/ only",
    )


@pytest.fixture(scope="session")
def target(request):
    return request.config.getoption("--target")


@pytest.fixture(scope="session")
def port(request):
    return request.config.getoption("--port")


@pytest.fixture(scope="session")
def hil_run(request, target, port):
    """One full HIL run (firmware build, QEMU or board, all measurements), saved under build/hil/
    (and, with --update-report, as reports/hil/<target>.*); on a core the deployed model does
    not fit, the refusal and the WMMSE yardstick."""
    from tinyrrm.hil import session

    res = session.run_hil(target, port=port, hil_dir=request.config.getoption("--hil-dir"), progress=False)
    session.save(
        res, target, request.config.getoption("--hil-dir"), publish=request.config.getoption("--update-report")
    )
    return res


@pytest.fixture(scope="session")
def hil(hil_run):
    """:func:`hil_run` of a core the deployed model fits."""
    if hil_run.get("fits") is False:  # the report says why; there is no firmware to test
        pytest.skip(hil_run["why"])
    return hil_run
