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
_all_cpus = None  # the cores we had before _split_cores, while the build runs


def _start_site_build():
    from helmholtz import gallery

    gallery.BUILD.mkdir(parents=True, exist_ok=True)
    log = open(gallery.BUILD / "quick-build.log", "w")
    process = gallery.build(quick=True, log=log)
    _split_cores(process.pid)
    return process, log


def _set_affinity(cpus, pid=None):
    """Pin every thread of a process (ours by default) to ``cpus``: Linux pins one thread
    per call, and XLA's thread pool already runs."""
    tasks = f"/proc/{pid or 'self'}/task"
    for tid in os.listdir(tasks) if os.path.isdir(tasks) else [pid or 0]:
        try:
            os.sched_setaffinity(int(tid), cpus)
        except OSError:  # a thread that has just ended
            pass


def _split_cores(build_pid):
    # With both processes free to run on every core, XLA's thread pools in the two wait on
    # each other's preempted threads: on 2 cores, eight-schools NUTS took 153 s in the
    # suite against 20 s on one core of its own. So the build gets half the cores and the
    # tests the other half until the build ends.
    if not hasattr(os, "sched_getaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return
    half = len(cpus) // 2
    _set_affinity(cpus[:half], build_pid)
    _set_affinity(cpus[half:])
    global _all_cpus
    _all_cpus = cpus



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
    from helmholtz import gallery

    if _site_build is None:
        _site_build = _start_site_build()
    process, log = _site_build
    process.wait()
    log.close()
    if _all_cpus is not None:
        _set_affinity(_all_cpus)
    if process.returncode != 0:
        lines = open(log.name).read().splitlines()
        flagged = [line for line in lines if "WARNING" in line or "ERROR" in line or "Error" in line]
        pytest.fail(
            f"the quick gallery build failed (exit {process.returncode}; full log: {log.name}):\n"
            + "\n".join(flagged[:40] + ["...", *lines[-40:]]),
            pytrace=False,
        )
    return gallery.output_dir(quick=True)
