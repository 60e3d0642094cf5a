"""/docs and /redoc work without internet: every asset they reference is served by the app itself (from the
pinned fastapi-offline package), and the pages keep the docs' Content-Security-Policy."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from gpulease.api.middleware import DOCS_CSP

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
URL_IN_SCRIPT = re.compile(r"""["'](https?:)?//[^"']+["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_assets_that_are_served(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200, r.text
    assert r.headers["content-security-policy"] == DOCS_CSP
    html = r.text
    assets = ASSET.findall(html)
    assert assets, f"{page} references no assets"
    remote = [a for a in assets if not a.startswith("/")] + [m.group(0) for m in URL_IN_SCRIPT.finditer(html)]
    assert not remote, f"{page} references assets off this server: {remote}"
    for asset in assets:
        got = client.get(asset)
        assert got.status_code == 200 and got.content, (asset, got.status_code)
    assert "/openapi.json" in html
    assert client.get("/openapi.json").status_code == 200
