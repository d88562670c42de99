"""Offline downloads (ARCHITECTURE decision 8): per-track AES-GCM content keys, audio encrypted in
chunks so it can be decrypted while it plays, and Ed25519-signed licenses bound to user and
device for 30 days; at most 10,000 downloads on each of at most 5 devices per user (premium).

* :mod:`.crypto` the formats (chunked AES-256-GCM file, X25519 key wrap, license signature),
  on the ``cryptography`` package; ``sdk/offline.py`` implements the client half of the same spec.
* :mod:`.keys` the server's key material from settings.
* :mod:`.service` the RPCs' rules and storage.
"""
