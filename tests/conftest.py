import os

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _close_figures():
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


# -- the gallery site, built once per session -----------------------------------------------
# The quick-mode Sphinx build executes every gallery example (minutes). It starts in the
# background as soon as collection shows that a test needs it, so it runs on a second core
# while the rest of the suite runs on the first; the fixture waits for it, and the tests
# that use it run last.
_site_build = None


def _start_site_build():
    from helmholtz.app import gallery

    gallery.BUILD.mkdir(parents=True, exist_ok=True)
    log = open(gallery.BUILD / "quick-build.log", "w")
    process = gallery.build(quick=True, log=log)
    _yield_to_tests(process.pid)
    return process, log


def _yield_to_tests(build_pid):
    # The build runs at the lowest priority, on whatever the tests leave idle. Competing
    # as an equal, it preempted threads of XLA's pool in the tests, and the pool waits for
    # its slowest thread: on 2 cores eight-schools NUTS took 153 s in the suite against
    # 20 s alone. (Pinning the two to a core each was worse: the tests' pools kept their
    # two threads on one core.)
    if hasattr(os, "setpriority"):
        os.setpriority(os.PRIO_PROCESS, build_pid, 19)


def _needs_site(item) -> bool:
    return "quick_site" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items):
    # The tests that need the site run last (a stable sort), so that everything else runs
    # while the site builds instead of waiting for it.
    items.sort(key=_needs_site)


def pytest_collection_finish(session):
    global _site_build
    if session.config.option.collectonly or _site_build is not None:
        return
    if any(map(_needs_site, session.items)):
        _site_build = _start_site_build()


def pytest_sessionfinish(session):
    # A session that never asked for the site (interrupted, or -x after a failure) does
    # not leave the build running.
    if _site_build is not None and _site_build[0].poll() is None:
        _site_build[0].terminate()
        _site_build[0].wait()


@pytest.fixture(scope="session")
def quick_site():
    """The gallery site built in quick mode (``docs/_build/quick``): every example executed
    once by sphinx-gallery, Sphinx warnings and the examples' warnings as errors."""
    global _site_build
    from helmholtz.app import gallery

    if _site_build is None:
        _site_build = _start_site_build()
    process, log = _site_build
    process.wait()
    log.close()
    if process.returncode != 0:
        lines = open(log.name).read().splitlines()
        flagged = [line for line in lines if "WARNING" in line or "ERROR" in line or "Error" in line]
        pytest.fail(
            f"the quick gallery build failed (exit {process.returncode}; full log: {log.name}):\n"
            + "\n".join(flagged[:40] + ["...", *lines[-40:]]),
            pytrace=False,
        )
    return gallery.output_dir(quick=True)
