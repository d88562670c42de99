"""Catalog changes as catalog.changes.v1 describes them: what every catalog write hands the outbox.

Writes and takedowns both store their changes' events in the outbox, in the transaction of the
change; this module is the shape they share, kept below both so neither imports the other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Protocol

from catalog_svc.store import AlbumRecord, ArtistRow, TrackRecord

CREATED = "created"
UPDATED = "updated"
DELETED = "deleted"  # gone from the catalog's reads (a takedown); its event carries no snapshot


@dataclass(frozen=True)
class Change:
    """A change a write makes, as its change event describes it: the entity after the change."""

    kind: str  # CREATED, UPDATED or DELETED
    actor_id: uuid.UUID
    entity: ArtistRow | AlbumRecord | TrackRecord

    @property
    def entity_id(self) -> uuid.UUID:
        if isinstance(self.entity, TrackRecord):
            return self.entity.track.id
        if isinstance(self.entity, AlbumRecord):
            return self.entity.album.id
        return self.entity.id


class ChangeEvents(Protocol):
    """Serializes a change into the event the outbox stores (objects.ObjectBuilder is one)."""

    def change_event(self, change: Change) -> bytes: ...
