"""The web dashboard: one page and its static assets, served by ``zeroops serve`` (docs/dashboard.md).

``router`` is mounted by the serve app.  The page and its assets need no token (they hold no data); every
figure, list and action is fetched by the browser from the authenticated API with the bearer token the
user types into the page (kept in ``sessionStorage``).  Assets are files in this package: no CDN.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from zeroops.serve.auth import ROLES, Principal, require_role
from zeroops.serve.dashboard.figures import as_json

STATIC = Path(__file__).with_name("static")
_TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}
_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
# The page runs only its own scripts and talks only to this origin.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")

router = APIRouter(tags=["dashboard"])


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    """The service's front door is the dashboard."""
    return RedirectResponse("/dashboard", status_code=307)


@router.get("/dashboard", include_in_schema=False)
def page() -> FileResponse:
    """The dashboard page."""
    return FileResponse(STATIC / "index.html", media_type=_TYPES[".html"],
                        headers={**_HEADERS, "Content-Security-Policy": _CSP})


@router.get("/dashboard/figures.json", include_in_schema=False)
def figures() -> JSONResponse:
    """Which figures the page shows, the API field each comes from, and its design-doc target."""
    return JSONResponse(as_json(), headers=_HEADERS)


@router.get("/api/dashboard/me")
def me(who: Principal = Depends(require_role("viewer"))) -> dict[str, object]:
    """Who the token belongs to and every role it holds (roles are a ladder), so the page can hide what it may not do."""
    return {"principal": who.name, "role": who.role, "roles": [r for r in ROLES if who.has(r)]}


@router.get("/dashboard/static/{name}", include_in_schema=False)
def asset(name: str) -> FileResponse:
    """A file of the page (only files in ``static/`` with a known type; no paths)."""
    path = STATIC / name
    kind = _TYPES.get(path.suffix)
    if "/" in name or name.startswith(".") or kind is None or not path.is_file():
        raise HTTPException(status_code=404, detail=f"no dashboard asset {name!r}")
    return FileResponse(path, media_type=kind, headers=_HEADERS)
