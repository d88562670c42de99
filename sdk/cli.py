"""`spotify-mesh`: a command-line player on the SDK.

    spotify-mesh login demo@example.com
    spotify-mesh search "midnight"
    spotify-mesh play spotify:track:2Wp20iMijRgltMiNjvIeLo --out song.wav
    spotify-mesh play spotify:album:<id> --raw | aplay -f cd
    spotify-mesh download <playlist id>
    spotify-mesh offline play <track id> --out offline.wav
    spotify-mesh account export --out my-data.zip

Where the mesh is: `--url` or SPOTIFY_MESH_URL (default the local mesh's Envoy). The session
token is kept in `--token-file` (default ~/.config/spotify-mesh/token); playback events waiting to
be sent and offline downloads in `--data-dir` (default ~/.local/share/spotify-mesh). Errors are
one line on stderr and exit status 1.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

import av
import grpc
import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table
from spotify.auth.v1 import auth_pb2
from spotify.catalog.v1 import catalog_pb2
from spotify.library.v1 import library_pb2
from spotify.rec.v1 import rec_pb2

from sdk.client import DEFAULT_URL, MeshClient
from sdk.events import EventReporter
from sdk.offline import OfflineError, OfflineManager
from sdk.player import AdaptivePlayer, PlayerError, RawSink, Sink, WavSink

app = typer.Typer(
    help="Play music from the mesh: sign in, search, play, playlists, offline, your account.",
    no_args_is_help=True,
)
playlists_app = typer.Typer(help="Your playlists.", no_args_is_help=True)
offline_app = typer.Typer(help="Tracks downloaded to this device.", no_args_is_help=True)
recs_app = typer.Typer(help="Recommendations.", no_args_is_help=True)
app.add_typer(playlists_app, name="playlists")
app.add_typer(offline_app, name="offline")
account_app = typer.Typer(help="Your account: a copy of your data, or its deletion.", no_args_is_help=True)
app.add_typer(recs_app, name="recs")
app.add_typer(account_app, name="account")

out = Console()
err = Console(stderr=True)


class CliError(Exception):
    """A failure to report in one line."""


@dataclass
class Context:
    url: str
    token_file: Path
    data_dir: Path
    ca: Path | None

    def client(self) -> MeshClient:
        return MeshClient(self.url, token_file=self.token_file, ca=self.ca)

    def signed_in(self) -> MeshClient:
        client = self.client()
        if not client.token:
            client.close()
            raise CliError("not signed in: run `spotify-mesh login <email>` first")
        return client

    def device_id(self) -> str:
        path = self.data_dir / "device-id"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(f"cli-{uuid.uuid4().hex[:12]}")
        return path.read_text().strip()

    def reporter(self, client: MeshClient) -> EventReporter:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return EventReporter(
            client, self.data_dir / "events.db", device_id=self.device_id(), device_type="computer"
        )

    @contextlib.contextmanager
    def offline(self, user_id: str = "", *, timeout_s: float | None = None) -> Iterator[OfflineManager]:
        """This device's offline store for the signed-in user (`user_id` when the mesh cannot be
        asked who that is), closed with its client afterwards."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.signed_in() as client:
            owner = user_id or client.auth.GetMe(auth_pb2.GetMeRequest(), timeout=timeout_s).id
            manager = OfflineManager(
                str(self.data_dir / "offline.db"), client, user_id=owner, device_id=self.device_id()
            )
            try:
                yield manager
            finally:
                manager.close()


def _ctx(typer_ctx: typer.Context) -> Context:
    found = typer_ctx.find_root().obj
    assert isinstance(found, Context)
    return found


@app.callback()
def main_options(
    typer_ctx: typer.Context,
    url: Annotated[
        str, typer.Option(envvar="SPOTIFY_MESH_URL", help="The mesh: http(s)://host[:port]")
    ] = DEFAULT_URL,
    token_file: Annotated[
        Path, typer.Option(envvar="SPOTIFY_MESH_TOKEN_FILE", help="Where the session token is kept")
    ] = Path("~/.config/spotify-mesh/token"),
    data_dir: Annotated[
        Path, typer.Option(envvar="SPOTIFY_MESH_DATA_DIR", help="Events to send and offline downloads")
    ] = Path("~/.local/share/spotify-mesh"),
    ca: Annotated[
        Path | None, typer.Option(envvar="SPOTIFY_MESH_CA", help="CA certificate to trust (TLS)")
    ] = None,
) -> None:
    typer_ctx.obj = Context(url, token_file.expanduser(), data_dir.expanduser(), ca)


# ---- session ---------------------------------------------------------------------------------


@app.command()
def login(
    typer_ctx: typer.Context,
    email: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, envvar="SPOTIFY_MESH_PASSWORD")],
) -> None:
    """Sign in; the session is kept in the token file."""
    with _ctx(typer_ctx).client() as client:
        try:
            client.login(email, password)
        except grpc.RpcError as refused:
            if refused.code() == grpc.StatusCode.UNAUTHENTICATED:  # type: ignore[attr-defined]
                raise CliError("wrong email or password") from None
            raise
        me = client.auth.GetMe(auth_pb2.GetMeRequest())
    out.print(f"Signed in as {me.display_name or me.email} ({me.product}).")


@app.command()
def logout(typer_ctx: typer.Context) -> None:
    """End the session and forget its token."""
    with _ctx(typer_ctx).client() as client:
        client.logout()
    out.print("Signed out.")


@app.command()
def me(typer_ctx: typer.Context) -> None:
    """Who is signed in."""
    with _ctx(typer_ctx).signed_in() as client:
        profile = client.auth.GetMe(auth_pb2.GetMeRequest())
    out.print(
        f"{profile.display_name} <{profile.email}>  {profile.product}  {profile.country}  id {profile.id}"
    )


# ---- catalog ---------------------------------------------------------------------------------


@app.command()
def search(
    typer_ctx: typer.Context,
    query: str,
    kind: Annotated[
        str, typer.Option("--type", help="track, album, artist (comma-separated)")
    ] = "track,album,artist",
    limit: Annotated[int, typer.Option(min=1, max=50)] = 5,
) -> None:
    """Search the catalog (typos are forgiven)."""
    with _ctx(typer_ctx).signed_in() as client:
        found = client.catalog.Search(catalog_pb2.SearchRequest(q=query, type=kind, limit=limit))
    table = Table("type", "name", "by", "id")
    for track in found.tracks.items:
        table.add_row("track", track.name, ", ".join(a.name for a in track.artists), track.id)
    for album in found.albums.items:
        table.add_row("album", album.name, ", ".join(a.name for a in album.artists), album.id)
    for artist in found.artists.items:
        table.add_row("artist", artist.name, "", artist.id)
    if not table.row_count:
        out.print(f"Nothing found for {query!r}.")
        return
    out.print(table)


def _kind_and_id(item: str) -> tuple[str, str]:
    """`spotify:<kind>:<id>` or a bare id (a track)."""
    parts = item.split(":")
    if len(parts) == 3 and parts[0] == "spotify" and parts[1] in ("track", "album", "playlist"):
        return parts[1], parts[2]
    if len(parts) == 1 and parts[0]:
        return "track", parts[0]
    raise CliError(
        f"{item!r}: give a track id, or spotify:track:<id>, spotify:album:<id>, spotify:playlist:<id>"
    )


def _tracks_of(client: MeshClient, item: str) -> list[catalog_pb2.Track]:
    kind, item_id = _kind_and_id(item)
    if kind == "track":
        return [client.catalog.GetTrack(catalog_pb2.GetTrackRequest(id=item_id))]
    if kind == "album":
        return list(
            client.catalog.ListAlbumTracks(catalog_pb2.ListAlbumTracksRequest(id=item_id, limit=50)).items
        )
    page = client.library.ListPlaylistItems(library_pb2.ListPlaylistItemsRequest(id=item_id, limit=100))
    return [entry.item for entry in page.items if entry.HasField("item")]


# ---- playing ---------------------------------------------------------------------------------


@app.command()
def play(
    typer_ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="a track id, or spotify:track|album|playlist:<id>")],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="WAV file (one track) or directory (several)")
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="16-bit stereo PCM on stdout (| aplay -f cd)")] = False,
    quality: Annotated[str, typer.Option(help="auto, low, normal or high")] = "auto",
) -> None:
    """Stream a track, album or playlist with the adaptive player; its plays are reported."""
    if raw == (out_path is not None):
        raise CliError("say where the audio goes: --out FILE.wav (or a directory), or --raw for stdout")
    context = _ctx(typer_ctx)
    console = err if raw else out  # with --raw, stdout carries the audio
    with context.signed_in() as client:
        user = client.auth.GetMe(auth_pb2.GetMeRequest())
        tracks = _tracks_of(client, item)
        if not tracks:
            raise CliError(f"{item} has no tracks")
        reporter = context.reporter(client)
        try:
            for number, track in enumerate(tracks, start=1):
                sink = _sink_for(out_path, raw, track, number, len(tracks))
                _play_one(client, reporter, user.id, track, sink, quality, console)
        finally:
            flushed = reporter.flush()
            reporter.close()
        if flushed.pending:
            console.print(f"{flushed.pending} playback events wait for the link; the next play sends them.")


def _sink_for(out_path: Path | None, raw: bool, track: catalog_pb2.Track, number: int, count: int) -> Sink:
    if raw:
        return RawSink(sys.stdout.buffer)
    assert out_path is not None
    if count == 1 and out_path.suffix.lower() == ".wav":
        return WavSink(out_path)
    out_path.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in track.name).strip() or track.id
    return WavSink(out_path / f"{number:02d} {safe}.wav")


def _play_one(
    client: MeshClient,
    reporter: EventReporter,
    user_id: str,
    track: catalog_pb2.Track,
    sink: Sink,
    quality: str,
    console: Console,
) -> None:
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[position]}"),
        TextColumn("{task.fields[kbps]} kbps"),
        TextColumn("link {task.fields[link]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(
            track.name, total=track.duration_ms or None, position="0:00", kbps="-", link="-"
        )

        def shown(position_ms: int, kbps: int, measured: float) -> None:
            progress.update(
                task,
                completed=position_ms,
                position=f"{position_ms // 60000}:{position_ms // 1000 % 60:02d}",
                kbps=str(kbps),
                link=f"{measured / 1000:.1f} Mbps" if measured >= 1000 else f"{measured:.0f} kbps",
            )

        player = AdaptivePlayer(client, reporter=reporter, user_id=user_id, on_progress=shown)
        played = player.play(track.id, sink, quality=quality)
        progress.update(task, completed=track.duration_ms or played.duration_ms)
    switches = ", ".join(f"{s.from_kbps}->{s.to_kbps} at {s.at_ms / 1000:.0f}s" for s in played.switches)
    console.print(
        f"played {played.duration_ms / 1000:.1f}s at {played.started_kbps} kbps"
        + (f"; {switches}" if switches else "")
    )


# ---- playlists -------------------------------------------------------------------------------


@playlists_app.command("list")
def playlists_list(typer_ctx: typer.Context) -> None:
    """Your playlists."""
    with _ctx(typer_ctx).signed_in() as client:
        page = client.library.ListMyPlaylists(library_pb2.ListMyPlaylistsRequest(limit=50))
    table = Table("name", "tracks", "id")
    for playlist in page.items:
        table.add_row(playlist.name, str(playlist.tracks.total), playlist.id)
    out.print(table if table.row_count else "No playlists yet: spotify-mesh playlists create <name>")


@playlists_app.command("create")
def playlists_create(
    typer_ctx: typer.Context, name: str, public: Annotated[bool, typer.Option("--public/--private")] = True
) -> None:
    """Create a playlist."""
    with _ctx(typer_ctx).signed_in() as client:
        created = client.library.CreatePlaylist(library_pb2.CreatePlaylistRequest(name=name, public=public))
    out.print(f"Created {created.name!r}: {created.id}")


@playlists_app.command("add")
def playlists_add(typer_ctx: typer.Context, playlist_id: str, tracks: list[str]) -> None:
    """Add tracks (ids or spotify:track:<id>) to a playlist."""
    uris = [t if t.startswith("spotify:track:") else f"spotify:track:{_kind_and_id(t)[1]}" for t in tracks]
    with _ctx(typer_ctx).signed_in() as client:
        client.library.AddPlaylistItems(library_pb2.AddPlaylistItemsRequest(id=playlist_id, uris=uris))
    out.print(f"Added {len(uris)} track(s).")


# ---- offline ---------------------------------------------------------------------------------


@app.command()
def download(typer_ctx: typer.Context, playlist_id: str) -> None:
    """Download a playlist for offline play (licenses last 30 days; `offline renew` extends them)."""
    with _ctx(typer_ctx).offline() as manager:
        manager.register("spotify-mesh CLI", "computer")
        with Progress(
            TextColumn("[bold]downloading"),
            BarColumn(),
            TaskProgressColumn(),
            TimeRemainingColumn(),
            console=out,
        ) as progress:
            task = progress.add_task("download", total=None)
            done = manager.download_playlist(
                playlist_id, on_progress=lambda n, total: progress.update(task, completed=n, total=total)
            )
    out.print(f"{len(done)} track(s) of {playlist_id} are on this device.")


@offline_app.command("list")
def offline_list(typer_ctx: typer.Context) -> None:
    """Downloaded tracks and when their licenses end."""
    with _ctx(typer_ctx).offline() as manager:
        tracks = manager.tracks()
    out.print("\n".join(tracks) if tracks else "Nothing downloaded: spotify-mesh download <playlist id>")


@offline_app.command("play")
def offline_play(
    typer_ctx: typer.Context,
    track_id: str,
    out_path: Annotated[Path, typer.Option("--out", help="WAV file")],
    user_id: Annotated[str, typer.Option(help="your user id (offline, the mesh cannot say)")] = "",
) -> None:
    """Play a downloaded track (no network needed) into a WAV file."""
    with _ctx(typer_ctx).offline(user_id, timeout_s=3) as manager:
        audio = b"".join(manager.play(track_id))
    sink = WavSink(out_path)
    opened = False
    with av.open(io.BytesIO(audio), mode="r", format="ogg") as container:
        for frame in container.decode(audio=0):
            pcm = frame.to_ndarray()
            if not opened:
                sink.open(frame.sample_rate, pcm.shape[0])
                opened = True
            sink.write(pcm)
    sink.close()
    out.print(f"Played {track_id} from this device into {out_path}.")


@offline_app.command("renew")
def offline_renew(typer_ctx: typer.Context) -> None:
    """Renew licenses that end within a week (needs the network)."""
    with _ctx(typer_ctx).offline() as manager:
        renewed = manager.renew()
    out.print(f"Renewed {renewed} license(s).")


# ---- recommendations -------------------------------------------------------------------------


def _track_table(tracks: Iterator[catalog_pb2.Track] | list[catalog_pb2.Track]) -> Table:
    table = Table("name", "by", "id")
    for track in tracks:
        table.add_row(track.name, ", ".join(a.name for a in track.artists), track.id)
    return table


@recs_app.command("discover-weekly")
def recs_discover_weekly(typer_ctx: typer.Context) -> None:
    """Your Discover Weekly."""
    with _ctx(typer_ctx).signed_in() as client:
        mix = client.recs.GetDiscoverWeekly(rec_pb2.GetDiscoverWeeklyRequest(limit=30))
    out.print(_track_table(list(mix.tracks)))


@recs_app.command("radio")
def recs_radio(
    typer_ctx: typer.Context,
    track: Annotated[str, typer.Option(help="seed track id")] = "",
    artist: Annotated[str, typer.Option(help="seed artist id")] = "",
    limit: Annotated[int, typer.Option(min=1, max=50)] = 10,
) -> None:
    """A radio station from a track or an artist."""
    if bool(track) == bool(artist):
        raise CliError("give one seed: --track <id> or --artist <id>")
    request = (
        rec_pb2.GetRadioRequest(seed_track_id=track, page_size=limit)
        if track
        else rec_pb2.GetRadioRequest(seed_artist_id=artist, page_size=limit)
    )
    with _ctx(typer_ctx).signed_in() as client:
        station = client.recs.GetRadio(request)
    out.print(_track_table(list(station.tracks)))


# ---- account ---------------------------------------------------------------------------------

# How long `account export` waits for the archive before it leaves the rest to `--id`.
EXPORT_WAIT_S = 300.0
_PENDING = auth_pb2.DataExport.STATE_PENDING


@account_app.command("export")
def account_export(
    typer_ctx: typer.Context,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the zip (default ./spotify-mesh-data-<export id>.zip)"),
    ] = None,
    export_id: Annotated[
        str, typer.Option("--id", help="Follow an export asked for earlier instead of asking for one")
    ] = "",
) -> None:
    """Download everything the mesh stores about you: one zip of JSON files and a README."""
    with _ctx(typer_ctx).signed_in() as client:
        if export_id:
            export = client.auth.GetDataExport(auth_pb2.GetDataExportRequest(id=export_id))
        else:
            try:
                export = client.auth.CreateDataExport(
                    auth_pb2.CreateDataExportRequest(request_id=str(uuid.uuid4()))
                )
            except grpc.RpcError as refused:
                if refused.code() != grpc.StatusCode.FAILED_PRECONDITION:  # type: ignore[attr-defined]
                    raise
                hint = "`spotify-mesh account export --id <export id>` follows one asked for earlier"
                raise CliError(f"{refused.details()}; {hint}") from None  # type: ignore[attr-defined]
        deadline = time.monotonic() + EXPORT_WAIT_S
        with out.status(f"assembling your data (export {export.id}) ..."):
            while export.state == _PENDING and time.monotonic() < deadline:
                time.sleep(1.0)
                export = client.auth.GetDataExport(auth_pb2.GetDataExportRequest(id=export.id))
        if export.state == _PENDING:
            raise CliError(
                f"export {export.id} is still being assembled: "
                f"run `spotify-mesh account export --id {export.id}` later"
            )
        if export.state != auth_pb2.DataExport.STATE_DONE:
            raise CliError(f"export {export.id} failed: {export.error or 'no reason given'}")
        signed = dict(parse_qsl(urlsplit(export.download_url).query))
        archive = client.auth.DownloadDataExport(
            auth_pb2.DownloadDataExportRequest(
                id=export.id, exp=int(signed["exp"]), uid=signed["uid"], kid=signed["kid"], sig=signed["sig"]
            ),
            timeout=120,
        )
    target = out_path or Path(f"spotify-mesh-data-{export.id}.zip")
    target.write_bytes(archive.data)
    with zipfile.ZipFile(target) as saved:
        files = len(saved.namelist())
    out.print(f"Saved {target}: {len(archive.data):,} bytes, {files} files (README.md says what each holds).")


@account_app.command("delete")
def account_delete(
    typer_ctx: typer.Context,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, envvar="SPOTIFY_MESH_PASSWORD")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask to confirm")] = False,
) -> None:
    """Delete your account and everything the mesh stores about you. There is no undo."""
    ctx = _ctx(typer_ctx)
    with ctx.signed_in() as client:
        profile = client.auth.GetMe(auth_pb2.GetMeRequest())
        if not yes:
            typer.confirm(f"Delete the account {profile.email} and all its data for good?", abort=True)
        client.auth.DeleteAccount(auth_pb2.DeleteAccountRequest(password=password))
        client.session.clear()  # every session ended with the account
    # What this device keeps for the account: offline copies and playback events not sent yet.
    for leftover in ("offline.db", "events.db"):
        (ctx.data_dir / leftover).unlink(missing_ok=True)
    out.print(
        f"Deleted the account {profile.email}; every session has ended, and this device's offline "
        "downloads are gone. The rest of the service erases its part in the next moments."
    )


# ---- errors ----------------------------------------------------------------------------------

_MESSAGES: dict[grpc.StatusCode, str] = {
    grpc.StatusCode.UNAUTHENTICATED: "the session has ended: run `spotify-mesh login <email>`",
    grpc.StatusCode.PERMISSION_DENIED: "not allowed",
    grpc.StatusCode.NOT_FOUND: "not found",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "too many requests: wait a moment",
    grpc.StatusCode.UNAVAILABLE: "the mesh cannot be reached",
    grpc.StatusCode.DEADLINE_EXCEEDED: "the mesh did not answer in time",
}


def describe(exc: BaseException) -> str | None:
    """One line for an error a user can meet, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, grpc.RpcError):
        code: grpc.StatusCode = exc.code()  # type: ignore[attr-defined]
        details = exc.details() or ""  # type: ignore[attr-defined]
        reason = _MESSAGES.get(code, code.name.lower().replace("_", " "))
        return f"{reason}: {details}" if details and code != grpc.StatusCode.UNAVAILABLE else reason
    if isinstance(exc, OfflineError):
        return f"offline: {exc}"
    if isinstance(exc, CliError | PlayerError | ValueError | OSError | httpx.HTTPError):
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    """The entry point: typer's app (usage errors as click shows them), every expected failure
    as one line on stderr."""
    command = typer.main.get_command(app)
    try:
        command.main(args=argv, prog_name="spotify-mesh", standalone_mode=True)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 0 if done.code is None else 1
    except Exception as exc:
        line = describe(exc)
        if line is None:
            raise
        err.print(f"error: {line}", markup=False, highlight=False)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
