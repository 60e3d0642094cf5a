from __future__ import annotations

import pytest

from gpulease.compliance.index import ScreeningIndex, bundled_index


@pytest.fixture(scope="session")
def index() -> ScreeningIndex:
    return bundled_index()
