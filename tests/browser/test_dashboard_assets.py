"""The dashboard's router without a browser: assets served locally, the figure table sound, targets judged right."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the dashboard needs fastapi (pip install -e '.[test]')")
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from zeroops.serve.auth import TokenAuthority  # noqa: E402
from zeroops.serve.dashboard import STATIC, router  # noqa: E402
from zeroops.serve.dashboard.figures import ENDPOINTS, FIGURES, SECTIONS, Target, lookup  # noqa: E402


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()
    app.state.tokens = TokenAuthority(b"k" * 32)
    app.include_router(router)
    return TestClient(app)


def test_page_and_assets_are_served_locally(client: TestClient) -> None:
    page = client.get("/dashboard")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    refs = re.findall(r'(?:src|href)="([^"#]+)"', page.text)
    assert refs, "the page names its assets"
    for ref in refs:
        assert not ref.startswith(("http:", "https:", "//")), f"external asset {ref} (no CDN: the page must work offline)"
        if ref.startswith("/dashboard/static/"):
            assert client.get(ref).status_code == 200, ref
    assert client.get("/", follow_redirects=False).headers["location"] == "/dashboard"


@pytest.mark.parametrize("name", ["../__init__.py", ".hidden.js", "figures.py", "nope.js", "..%2F__init__.py"])
def test_only_known_assets_are_served(client: TestClient, name: str) -> None:
    assert client.get(f"/dashboard/static/{name}").status_code == 404


def test_no_asset_reaches_the_network() -> None:
    for f in STATIC.iterdir():
        assert not re.search(r"https?://", f.read_text()), f"{f.name} names an external URL"


def test_me_needs_a_token_and_lists_the_ladder(client: TestClient) -> None:
    assert client.get("/api/dashboard/me").status_code == 401
    tok = client.app.state.tokens.mint("ann", "approver")  # type: ignore[attr-defined]
    body = client.get("/api/dashboard/me", headers={"Authorization": f"Bearer {tok}"}).json()
    assert body == {"principal": "ann", "role": "approver", "roles": ["viewer", "operator", "approver"]}


def test_figure_table_is_consistent(client: TestClient) -> None:
    spec = client.get("/dashboard/figures.json").json()
    sections = {s for s, _ in SECTIONS}
    assert {f["section"] for f in spec["figures"]} == sections, "every section shows at least one figure"
    assert len({f.id for f in FIGURES}) == len(FIGURES)
    assert all(f.source.startswith("/api/") for f in FIGURES)
    assert spec["endpoints"] == ENDPOINTS and all(e.startswith("/api/") for e in ENDPOINTS.values())


@pytest.mark.parametrize(
    ("target", "value", "expected"),
    [
        (Target("<", 60.0, "< 60 s"), 59.9, True),
        (Target("<", 60.0, "< 60 s"), 60.0, False),
        (Target(">", 0.99999, "> 99.999 %"), 0.99991, False),
        (Target("range", 0.30, "30-40 %", high=0.40), 0.41, False),
        (Target("range", 0.30, "30-40 %", high=0.40), 0.35, True),
        (Target("==", 0, "0"), 1, False),
        (Target("<", 60.0, "< 60 s"), None, None),
        (Target("<", 60.0, "< 60 s"), "soon", None),
    ],
)
def test_target_judgement(target: Target, value: object, expected: bool | None) -> None:
    assert target.met(value) is expected


def test_lookup_follows_dotted_paths() -> None:
    assert lookup({"a": {"b": 3}}, "a.b") == 3
    assert lookup({"a": {"b": 3}}, "a.c") is None
    assert lookup({"a": 1}, "a.b") is None


def test_docs_list_every_figure() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "dashboard.md").read_text()
    for f in FIGURES:
        assert f"| {f.label} |" in docs and f"{f.path}`" in docs, f"docs/dashboard.md does not describe {f.label}"
