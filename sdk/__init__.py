"""The Python client SDK: the reference client for car and smart-speaker integrations."""

from sdk.client import MeshClient

__all__ = ["MeshClient"]
