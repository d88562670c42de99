"""``python -m media_svc``: serve on ``LISTEN_ADDR`` or ``Settings.media_addr``."""

from media_svc.server import main

if __name__ == "__main__":
    main()
