"""The web player in Debian's chromium: first contentful paint and time from pressing play to the
audio `playing`, cold and warm cache, each beside a floor measured in the same run; and the
bundle's size against its budget.

- First contentful paint of /app/ (the sign-in check included) over that of the smallest page the
  same edge serves (/healthz): what the app adds to a navigation.
- Play: a click on an album's first track until the <audio> element fires `playing` (stream URL,
  ranged media request, decode start, the mesh's play state and the start event), over the floor
  of the same two hops done bare in the same page (fetch the stream URL, `new Audio(url).play()`).
- Cold is a fresh browser profile each round; warm reloads the page in the same profile.
- Bundle: the built JavaScript and CSS, gzipped, against the 150 KiB budget.

Runs on a private mesh (its own ports and database) with the demo's audio:

    python -m bench.web_player [--rounds 5]
"""

from __future__ import annotations

import argparse
import gzip
import statistics

from playwright.sync_api import Browser, Page, sync_playwright

from bench.edge_vs_direct import login
from devdata import demo
from meshctl import mesh
from meshctl.browser import CHROMIUM_ARGS, chromium
from meshkit.config import PROJECT_ROOT

BUDGET_KIB = 150
FCP = "() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null"
PLAY = """async () => {
  const button = document.querySelector('[aria-label^="Play "]');
  const started = performance.now();
  const playing = new Promise((done) =>
    document.addEventListener('playing', done, { capture: true, once: true }));
  button.click();
  await playing;
  return performance.now() - started;
}"""
PLAY_FLOOR = """async (trackId) => {
  const started = performance.now();
  const reply = await fetch(`/api/playback/stream?track_id=${trackId}&quality=auto`,
                            { credentials: 'same-origin' });
  const audio = new Audio((await reply.json()).url);
  const playing = new Promise((done) => audio.addEventListener('playing', done, { once: true }));
  await audio.play();
  await playing;
  const took = performance.now() - started;
  audio.pause();
  audio.removeAttribute('src');
  return took;
}"""


def first_paint(page: Page, path: str) -> float:
    page.goto(path)
    page.wait_for_function("() => performance.getEntriesByName('first-contentful-paint').length > 0")
    return float(page.evaluate(FCP))


def album_page(page: Page, album_id: str) -> None:
    page.goto(f"/app/album/{album_id}")
    page.wait_for_selector('[aria-label^="Play "]')


def rounds(browser: Browser, base: str, token: str, album_id: str, n: int) -> dict[str, list[float]]:
    names = ("fcp cold", "fcp warm", "fcp floor", "play cold", "play warm", "play floor")
    got: dict[str, list[float]] = {name: [] for name in names}
    cookie = {"name": "session", "value": token, "url": base, "httpOnly": True}
    for _ in range(n):
        context = browser.new_context(base_url=base)
        context.add_cookies([cookie])  # type: ignore[list-item]
        page = context.new_page()
        got["fcp floor"].append(first_paint(page, "/healthz"))
        page.close()
        page = context.new_page()
        got["fcp cold"].append(first_paint(page, "/app/"))
        album_page(page, album_id)
        got["play cold"].append(float(page.evaluate(PLAY)))
        page.reload()
        got["fcp warm"].append(first_paint(page, "/app/"))
        album_page(page, album_id)
        got["play warm"].append(float(page.evaluate(PLAY)))
        page.goto("/app/")
        got["play floor"].append(float(page.evaluate(PLAY_FLOOR, demo.DEMO_TRACK_ID)))
        context.close()
    return got


def bundle_kib() -> float:
    assets = (PROJECT_ROOT / "web" / "dist" / "assets").glob("*")
    return sum(len(gzip.compress(p.read_bytes(), 9)) for p in assets if p.suffix in (".js", ".css")) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    executable = chromium()
    if executable is None:
        raise SystemExit("chromium is not installed (make install installs Debian's where apt-get exists)")
    with mesh.private_mesh("bench-web-", audio_tracks=2) as running:
        token = login(running.envoy_url)["access_token"]
        import httpx

        track = httpx.get(
            f"{running.envoy_url}/v1/tracks/{demo.DEMO_TRACK_ID}",
            headers={"authorization": f"Bearer {token}"},
        ).json()
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
            )
            got = rounds(browser, running.envoy_url, token, track["album"]["id"], args.rounds)
            browser.close()
    med = {k: statistics.median(v) for k, v in got.items()}
    print(f"web player in chromium, median of {args.rounds} rounds (ms)")
    print(f"  {'':32} {'app':>8} {'floor':>8} {'ratio':>6}")
    for what, floor in (("first contentful paint", "fcp floor"), ("press play to playing", "play floor")):
        key = "fcp" if floor == "fcp floor" else "play"
        for cache in ("cold", "warm"):
            app = med[f"{key} {cache}"]
            print(f"  {what + ' ' + cache:32} {app:8.1f} {med[floor]:8.1f} {app / med[floor]:6.2f}")
    size = bundle_kib()
    print(f"bundle (JS + CSS, gzip): {size:.1f} KiB of a {BUDGET_KIB} KiB budget ({size / BUDGET_KIB:.2f})")


if __name__ == "__main__":
    main()
