"""media_svc: the CDN origin that serves audio bytes behind signed URLs (see ``media_svc.app``)."""

from media_svc.app import make_app

__all__ = ["make_app"]
