"""Spotify's three ways of naming an object: `uri`, `href` (the Web API) and `external_urls`.

Every service builds its objects' links here, so a kind's spelling is the same everywhere:
`spotify:track:<id>`, `<base>/v1/tracks/<id>` and `<base>/track/<id>` (the open URL), where
`<base>` is the public base URL clients reach the edge at.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Links:
    uri: str
    href: str
    # external_urls.spotify
    open_url: str


def uri(kind: str, key: str) -> str:
    """`spotify:<kind>:<id>` (`key` is the base62 id)."""
    return f"spotify:{kind}:{key}"


def href(base: str, kind: str, key: str) -> str:
    """The object's Web API URL: `<base>/v1/<kind>s/<id>`."""
    return f"{base}/v1/{kind}s/{key}"


def open_url(base: str, kind: str, key: str) -> str:
    """The object's page (Spotify's `external_urls.spotify`): `<base>/<kind>/<id>`."""
    return f"{base}/{kind}/{key}"


def of(base: str, kind: str, key: str) -> Links:
    """All three links of one object."""
    return Links(uri=uri(kind, key), href=href(base, kind, key), open_url=open_url(base, kind, key))
