"""Which Glance image a release of a service runs: the live config's ``releases`` and ``release_image``.

A service with either one is *image-deployed*: ``Deploy`` rebuilds servers with the version's image (Nova
rebuild) and ``RollbackDeploy`` rebuilds them with the image they ran before.  A service with neither is
*tag-deployed*: zeroops only writes the version into server metadata and the site's deploy tooling reads it
(docs/live-mode.md).  While a rebuild is in flight the server carries :data:`META_REBUILD` (``<version>
<image id>``), written before the first rebuild of an action and removed once the server runs that image, so
a controller restarted mid-action finishes exactly the planned rebuilds (``OpenStackAdapter.reconcile``).
"""

from __future__ import annotations

from adapters.base import Conflict
from adapters.live_config import ServiceSpec

#: metadata on a server whose rebuild is planned or in flight: "<version> <image id>"
META_REBUILD = "zeroops_rebuild_to"
#: metadata: the image id a server ran before zeroops last rebuilt it (what a rollback goes back to)
META_PREV_IMAGE = "zeroops_prev_image"


def image_deployed(spec: ServiceSpec) -> bool:
    """True when the service's deploys rebuild servers (``releases`` or ``release_image`` set)."""
    return bool(spec.releases) or spec.release_image is not None


def image_name(spec: ServiceSpec, version: str) -> str | None:
    """The image (name or id) of ``version``: ``releases[version]``, else ``release_image`` filled in; None
    for a tag-deployed service.  A version neither names is a :class:`Conflict` naming the field."""
    if not image_deployed(spec):
        return None
    if version in spec.releases:
        return spec.releases[version]
    if spec.release_image is not None:
        return spec.release_image.format(version=version)
    raise Conflict(f"services[{spec.name}].releases: no image for version {version!r}; "
                   f"versions: {sorted(spec.releases)} (or set release_image: 'name-{{version}}')")


def marker(version: str, image_id: str) -> str:
    return f"{version} {image_id}"


def parse_marker(value: str | None) -> tuple[str, str] | None:
    """``(version, image id)`` of a :data:`META_REBUILD` value; None if absent or malformed."""
    version, _, image_id = (value or "").strip().rpartition(" ")
    return (version, image_id) if version and image_id else None
