"""Lets `python -m pytest benchmarks/ --benchmark-only` skip cleanly without pytest-benchmark.

When the plugin is missing (or disabled with -p no:benchmark), its command-line
flags would be an error before any test is collected; this registers inert
stand-ins so the micro-benchmarks are collected and skipped
(test_bench_micro.py calls pytest.importorskip / checks for the fixture).
"""


def pytest_addoption(parser, pluginmanager):
    if pluginmanager.hasplugin("benchmark"):
        return
    group = parser.getgroup("benchmark (pytest-benchmark not available)")
    group.addoption("--benchmark-only", action="store_true", default=False,
                    help="ignored: pytest-benchmark is not available")
    group.addoption("--benchmark-disable", action="store_true", default=False,
                    help="ignored: pytest-benchmark is not available")


def pytest_collection_modifyitems(config, items):
    if config.pluginmanager.hasplugin("benchmark"):
        return
    import pytest

    skip = pytest.mark.skip(reason="pytest-benchmark is not available")
    for item in items:
        if "benchmark" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)
