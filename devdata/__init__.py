"""Development data: the demo catalog, accounts and playlist, and synthesized audio.

Tools and tests use it; product packages never import it.
"""
