"""Lets `python -m pytest benchmarks/ --benchmark-only` skip cleanly without pytest-benchmark.

When the plugin is missing, its command-line flags would be an error before any
test is collected; this registers inert stand-ins so the micro-benchmarks are
collected and skipped (test_bench_micro.py calls pytest.importorskip).
"""
import importlib.util

if importlib.util.find_spec("pytest_benchmark") is None:
    def pytest_addoption(parser):
        group = parser.getgroup("benchmark (pytest-benchmark not installed)")
        group.addoption("--benchmark-only", action="store_true", default=False,
                        help="ignored: pytest-benchmark is not installed")
        group.addoption("--benchmark-disable", action="store_true", default=False,
                        help="ignored: pytest-benchmark is not installed")
