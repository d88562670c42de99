"""The role table's walk: a world of accounts and items on the test mesh, a valid request for every
public RPC, and each request sent as JSON (from the RPC's HTTP binding) or as native gRPC.

A request is built once, as the RPC's protobuf message; its JSON form is derived from the binding
the way Envoy's transcoder reads it back (path variables, then the body, the rest as the query),
so both transports carry the same request.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import itertools
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import grpc
import httpx
import numpy as np
import soundfile as sf
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from google.protobuf import json_format, message
from spotify.auth.v1 import auth_pb2
from spotify.catalog.v1 import catalog_pb2
from spotify.library.v1 import library_pb2
from spotify.playback.v1 import playback_pb2
from spotify.rec.v1 import rec_pb2

from devdata import demo
from meshctl.mesh import Mesh, build_recommendations
from meshkit import ids
from sdk import offline_format
from tests.e2e.clients import bearer, bearer_metadata, call_rpc, grpc_channel_from
from tests.e2e.role_table import Caller, Route
from tests.support import until

Message = message.Message
AUDIO_TRACKS = [ids.encode(t) for t in demo.audio_order(4)]  # the tests' demo tracks with audio
DEMO_ALBUM_ID = ids.encode(demo.demo_uuid("album:The Loud Valleys:0"))


@dataclass
class Account:
    """A signed-in user of the walk (its password and email change as the walk changes them)."""

    email: str
    password: str
    user_id: str
    token: str
    product: str = "free"


@dataclass
class World:
    """The walk's accounts (one per signed-in caller, plus a bystander) and the items it acts on."""

    accounts: dict[Caller, Account]
    bystander: Account
    victim: Account
    artist_x: str
    artist_y: str
    album: str
    track: str
    job: str
    playlist: str
    device: str
    device_key: bytes
    license_to_renew: str
    license_to_delete: str
    login: Callable[[str, str], str]
    # Lifts a takedown of a track (as the demo admin), so each allowed takedown is undone at once.
    restore: Callable[[str], None]
    # A fresh account to delete: (user id, password, token).
    throwaway: Callable[[], tuple[str, str, str]]
    # An account deleted (and erased everywhere) while the world was made.
    deleted_user: str
    # The PREMIUM caller's data export (done), and its signed download as a request.
    export_id: str
    export_download: auth_pb2.DownloadDataExportRequest
    track_numbers: Iterator[int] = field(default_factory=lambda: itertools.count(100))

    def of(self, caller: Caller) -> Account | None:
        return self.accounts.get(caller)


# ---- making the world -------------------------------------------------------------------------


def _ok(reply: httpx.Response) -> dict[str, Any]:
    assert reply.status_code == 200, f"{reply.request.method} {reply.request.url}: {reply.text}"
    body = reply.json()
    assert isinstance(body, dict)
    return body


def wav_bytes(seconds: float = 1.0, rate: int = 22050) -> bytes:
    """A short sine tone as WAV: real audio for an upload."""
    t = np.arange(int(seconds * rate)) / rate
    out = io.BytesIO()
    sf.write(out, 0.3 * np.sin(2 * np.pi * 440 * t), rate, format="WAV")
    return out.getvalue()


def ingest_messages(track_id: str, data: bytes) -> list[catalog_pb2.IngestTrackAudioRequest]:
    metadata = catalog_pb2.IngestMetadata(
        track_id=track_id, filename="walk.wav", content_type="audio/wav", size=len(data)
    )
    return [
        catalog_pb2.IngestTrackAudioRequest(metadata=metadata),
        catalog_pb2.IngestTrackAudioRequest(chunk=data),
    ]


def recommendations_built(mesh: Mesh) -> None:
    """Run the recommendation batch once unless rec_svc already serves a build, and wait until it
    does (until then its recommendation RPCs answer UNAVAILABLE). Asked of rec_svc itself, so no
    user's rate-limit budget is spent."""
    path = "/spotify.rec.v1.RecommendationService/GetRecommendations"
    someone = (("x-user-id", ids.encode(uuid.uuid4())), ("x-user-roles", "user"))

    def code() -> grpc.StatusCode:
        with grpc.insecure_channel(f"127.0.0.1:{mesh.layout.internal_ports['rec_svc']}") as channel:
            try:
                call_rpc(
                    channel, path, rec_pb2.GetRecommendationsRequest(seed_genres="rock", limit=1), someone
                )
            except grpc.RpcError as err:
                return err.code()
        return grpc.StatusCode.OK

    if code() is grpc.StatusCode.UNAVAILABLE:
        build_recommendations(mesh)
    deadline = time.monotonic() + 60
    while (answer := code()) is grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline:
        time.sleep(0.5)
    assert answer is grpc.StatusCode.OK, f"recommendations answer {answer.name} after the batch build"


def make_world(
    http: httpx.Client,
    grpc_target: str,
    admin_token: str,
    new_account: Callable[..., tuple[str, str, str]],
    login: Callable[[str, str], str],
) -> World:
    """Fresh accounts for every signed-in caller and fresh items, made through the edge by the
    demo admin and the accounts themselves (no demo row changes)."""
    tag = secrets.token_hex(3)
    admin = bearer(admin_token)

    def account(name: str) -> Account:
        email, password, token = new_account(f"Walk {name} {tag}")
        me = _ok(http.get("/v1/me", headers=bearer(token)))
        return Account(email, password, me["id"], token)

    def set_roles(who: Account, roles: list[str], artist_ids: tuple[str, ...] = ()) -> None:
        _ok(
            http.put(
                f"/api/admin/users/{who.user_id}/roles",
                json={"roles": roles, "artist_ids": list(artist_ids)},
                headers=admin,
            )
        )

    artist_x = _ok(http.post("/api/catalog/artists", json={"name": f"Walk X {tag}"}, headers=admin))["id"]
    artist_y = _ok(http.post("/api/catalog/artists", json={"name": f"Walk Y {tag}"}, headers=admin))["id"]
    album = _ok(
        http.post(
            "/api/catalog/albums",
            json={"name": f"Walk album {tag}", "album_type": "album", "artist_ids": [artist_x]},
            headers=admin,
        )
    )["id"]
    track = _ok(
        http.post(
            "/api/catalog/tracks",
            json={"album_id": album, "name": "Walk track", "track_number": 1},
            headers=admin,
        )
    )["id"]

    accounts = {caller: account(caller.name) for caller in Caller if caller is not Caller.ANONYMOUS}
    set_roles(accounts[Caller.PREMIUM], ["ROLE_USER", "ROLE_PREMIUM"])
    accounts[Caller.PREMIUM].product = "premium"
    set_roles(accounts[Caller.OWNER], ["ROLE_USER", "ROLE_ARTIST"], (artist_x,))
    set_roles(accounts[Caller.OTHER_ARTIST], ["ROLE_USER", "ROLE_ARTIST"], (artist_y,))
    set_roles(accounts[Caller.ADMIN], ["ROLE_USER", "ROLE_ADMIN"])
    bystander, victim = account("bystander"), account("victim")

    owner, premium = accounts[Caller.OWNER], accounts[Caller.PREMIUM]
    with grpc_channel_from(grpc_target) as channel:
        job = call_rpc(
            channel,
            "/spotify.catalog.v1.CatalogService/IngestTrackAudio",
            ingest_messages(track, wav_bytes()),
            bearer_metadata(owner.token),
            timeout=30,
        ).id
    _wait_for_job(http, job, owner.token)

    playlist = _ok(
        http.post(
            "/v1/me/playlists", json={"name": f"Walk mix {tag}", "public": True}, headers=bearer(owner.token)
        )
    )["id"]
    uris = [f"spotify:track:{t}" for t in AUDIO_TRACKS]
    _ok(http.post(f"/v1/playlists/{playlist}/items", json={"uris": uris}, headers=bearer(owner.token)))

    device = f"walk-{tag}"
    device_key = offline_format.public_bytes(X25519PrivateKey.generate().public_key())
    _ok(
        http.post(
            "/api/playback/offline/devices",
            json={"device_id": device, "name": "Walk phone", "public_key": _b64(device_key)},
            headers=bearer(premium.token),
        )
    )
    licenses = [
        _ok(
            http.post(
                "/api/playback/offline/downloads",
                json={"device_id": device, "track_id": track_id, "quality": "low"},
                headers=bearer(premium.token),
            )
        )["license"]["license_id"]
        for track_id in AUDIO_TRACKS[:2]
    ]
    for who in accounts.values():
        _ok(http.put("/v1/me/player/play", json={"uris": uris[:3]}, headers=bearer(who.token)))

    def throwaway() -> tuple[str, str, str]:
        _email, password, token = new_account(f"Walk throwaway {tag}")
        return _ok(http.get("/v1/me", headers=bearer(token)))["id"], password, token

    # Erased everywhere before the walk starts: its refused cells compare the databases.
    deleted_user = throwaway()[0]
    _ok(http.delete(f"/api/admin/users/{deleted_user}", headers=admin))
    until(
        lambda: _ok(http.get(f"/api/admin/users/{deleted_user}/deletion", headers=admin))["complete"],
        f"the deletion of {deleted_user} to complete",
        within=60,
        interval=0.2,
    )

    premium_auth = bearer(premium.token)
    export_id = _ok(http.post("/api/account/data-export", json={}, headers=premium_auth))["id"]
    export = until(
        lambda: (
            (e := _ok(http.get(f"/api/account/data-export/{export_id}", headers=premium_auth)))["state"]
            == "STATE_DONE"
            and e
        ),
        f"data export {export_id} to be done",
        within=60,
        interval=0.2,
    )
    signed = dict(parse_qsl(urlsplit(export["download_url"]).query))
    export_download = auth_pb2.DownloadDataExportRequest(
        id=export_id, exp=int(signed["exp"]), uid=signed["uid"], kid=signed["kid"], sig=signed["sig"]
    )

    def restore(track_id: str) -> None:
        path = f"/api/catalog/tracks/{track_id}/takedown"
        _ok(http.delete(path, params={"reason": "the walk undoes its takedown"}, headers=admin))

    return World(
        accounts=accounts,
        bystander=bystander,
        victim=victim,
        artist_x=artist_x,
        artist_y=artist_y,
        album=album,
        track=track,
        job=job,
        playlist=playlist,
        device=device,
        device_key=device_key,
        license_to_renew=licenses[0],
        license_to_delete=licenses[1],
        login=login,
        restore=restore,
        throwaway=throwaway,
        deleted_user=deleted_user,
        export_id=export_id,
        export_download=export_download,
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _wait_for_job(http: httpx.Client, job: str, token: str, timeout: float = 60) -> None:
    """Until the ingest job has finished (it rewrites the track's rows while it runs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _ok(http.get(f"/api/catalog/ingest-jobs/{job}", headers=bearer(token)))["status"]
        if status == "STATUS_SUCCEEDED":
            return
        assert status in ("STATUS_QUEUED", "STATUS_RUNNING"), f"ingest job {job}: {status}"
        time.sleep(0.2)
    raise TimeoutError(f"ingest job {job} unfinished after {timeout:.0f} s")


# ---- one valid request per public RPC ---------------------------------------------------------


@dataclass
class Prepared:
    """A cell's request, the token it is sent with, and what to do after a success."""

    request: Message | list[Message]
    token: str | None
    # From a loopback address of its own (per-IP rate limits).
    own_address: bool = False
    after_success: Callable[[], None] | None = None


Builder = Callable[[World, Caller, Route], Prepared]


def _std(build: Callable[[World, Account | None, Route], Message | list[Message]]) -> Builder:
    """A request sent with the caller's own token."""

    def prepare(world: World, caller: Caller, route: Route) -> Prepared:
        who = world.of(caller)
        return Prepared(build(world, who, route), who.token if who else None)

    return prepare


def _take_down(world: World, caller: Caller, route: Route) -> Prepared:
    """The walk's track, restored right after each takedown that is allowed."""
    who = world.of(caller)
    request = catalog_pb2.TakeDownContentRequest(collection="tracks", id=world.track, reason="walk")
    return Prepared(request, who.token if who else None, after_success=lambda: world.restore(world.track))


def _delete_account(world: World, caller: Caller, route: Route) -> Prepared:
    """An allowed cell deletes an account of its own making (its caller's would end the walk)."""
    who = world.of(caller)
    if route.expected(caller).http != 200:
        return Prepared(auth_pb2.DeleteAccountRequest(password="walk"), who.token if who else None)
    _user_id, password, token = world.throwaway()
    return Prepared(auth_pb2.DeleteAccountRequest(password=password), token)


def _delete_user(world: World, caller: Caller, route: Route) -> Prepared:
    """An allowed cell deletes an account of its own making; a refused one aims at the victim."""
    who = world.of(caller)
    allowed = route.expected(caller).http == 200
    target = world.throwaway()[0] if allowed else world.victim.user_id
    return Prepared(auth_pb2.DeleteUserRequest(user_id=target, reason="walk"), who.token if who else None)


def _fresh_email() -> str:
    return f"walk-{uuid.uuid4().hex[:12]}@example.com"


def _register(world: World, caller: Caller, route: Route) -> Prepared:
    who = world.of(caller)
    request = auth_pb2.RegisterRequest(email=_fresh_email(), password="walk-password", display_name="Walk")
    return Prepared(request, who.token if who else None, own_address=True)


def _login(world: World, caller: Caller, route: Route) -> Prepared:
    who = world.of(caller)
    request = auth_pb2.LoginRequest(email=world.bystander.email, password=world.bystander.password)
    return Prepared(request, who.token if who else None, own_address=True)


def _logout(world: World, caller: Caller, route: Route) -> Prepared:
    """With a second session of the caller's, so the walk's own stays open."""
    who = world.of(caller)
    token = world.login(who.email, who.password) if who else None
    return Prepared(auth_pb2.LogoutRequest(), token)


def _logout_everywhere(world: World, caller: Caller, route: Route) -> Prepared:
    """Closes the walk's session too: sign in again afterwards."""
    who = world.of(caller)
    if who is None:
        return Prepared(auth_pb2.LogoutEverywhereRequest(), None)

    def sign_in_again() -> None:
        who.token = world.login(who.email, who.password)

    return Prepared(auth_pb2.LogoutEverywhereRequest(), who.token, after_success=sign_in_again)


def _change_password(world: World, caller: Caller, route: Route) -> Prepared:
    who = world.of(caller)
    if who is None:
        return Prepared(
            auth_pb2.ChangePasswordRequest(current_password="x", new_password="walk-password-2"), None
        )
    new = f"walk-{secrets.token_hex(6)}"

    def remember() -> None:
        who.password = new

    request = auth_pb2.ChangePasswordRequest(current_password=who.password, new_password=new)
    return Prepared(request, who.token, after_success=remember)


def _change_email(world: World, caller: Caller, route: Route) -> Prepared:
    who = world.of(caller)
    new = _fresh_email()
    if who is None:
        return Prepared(auth_pb2.ChangeEmailRequest(new_email=new, password="x"), None)

    def remember() -> None:
        who.email = new

    return Prepared(
        auth_pb2.ChangeEmailRequest(new_email=new, password=who.password), who.token, after_success=remember
    )


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _track_uri(track_id: str) -> str:
    return f"spotify:track:{track_id}"


A = auth_pb2
C = catalog_pb2
L = library_pb2
P = playback_pb2
R = rec_pb2
DEMO_TRACK = demo.DEMO_TRACK_ID
DEMO_ARTIST = demo.DEMO_ARTIST_ID
_AUTH = "/spotify.auth.v1.AuthService/"
_ADMIN = "/spotify.auth.v1.AdminService/"
_CAT = "/spotify.catalog.v1.CatalogService/"
_LIB = "/spotify.library.v1.LibraryService/"
_PB = "/spotify.playback.v1.PlaybackService/"
_REC = "/spotify.rec.v1.RecommendationService/"


def _create_playlist(world: World, who: Account | None, route: Route) -> Message:
    # The /v1/users/{user_id} binding names a user: the OWNER (see role_table.ROUTE_RULES).
    owner = world.accounts[Caller.OWNER].user_id if route.http and "{user_id}" in route.template else ""
    return L.CreatePlaylistRequest(user_id=owner, name="Walk list", public=False)


BUILDERS: dict[str, Builder] = {
    # auth
    f"{_AUTH}Register": _register,
    f"{_AUTH}Login": _login,
    f"{_AUTH}Logout": _logout,
    f"{_AUTH}LogoutEverywhere": _logout_everywhere,
    f"{_AUTH}GetMe": _std(lambda w, who, r: A.GetMeRequest()),
    f"{_AUTH}GetUser": _std(lambda w, who, r: A.GetUserRequest(user_id=w.bystander.user_id)),
    f"{_AUTH}ChangePassword": _change_password,
    f"{_AUTH}ChangeEmail": _change_email,
    f"{_AUTH}DeleteAccount": _delete_account,
    f"{_AUTH}CreateDataExport": _std(lambda w, who, r: A.CreateDataExportRequest(request_id="walk")),
    f"{_AUTH}GetDataExport": _std(lambda w, who, r: A.GetDataExportRequest(id=w.export_id)),
    f"{_AUTH}DownloadDataExport": _std(lambda w, who, r: w.export_download),
    f"{_AUTH}UpdateSubscription": _std(
        lambda w, who, r: A.UpdateSubscriptionRequest(product=who.product if who else "free")
    ),
    f"{_ADMIN}ListUsers": _std(lambda w, who, r: A.ListUsersRequest(limit=1)),
    f"{_ADMIN}BanUser": _std(lambda w, who, r: A.BanUserRequest(user_id=w.victim.user_id, reason="walk")),
    f"{_ADMIN}UnbanUser": _std(lambda w, who, r: A.UnbanUserRequest(user_id=w.victim.user_id)),
    f"{_ADMIN}SetUserRoles": _std(
        lambda w, who, r: A.SetUserRolesRequest(user_id=w.victim.user_id, roles=[A.ROLE_USER])
    ),
    f"{_ADMIN}ListAuditLogs": _std(lambda w, who, r: A.ListAuditLogsRequest(limit=1)),
    f"{_ADMIN}DeleteUser": _delete_user,
    f"{_ADMIN}GetUserDeletion": _std(lambda w, who, r: A.GetUserDeletionRequest(user_id=w.deleted_user)),
    # catalog reads
    f"{_CAT}GetTrack": _std(lambda w, who, r: C.GetTrackRequest(id=DEMO_TRACK)),
    f"{_CAT}BatchGetTracks": _std(lambda w, who, r: C.BatchGetTracksRequest(ids=DEMO_TRACK)),
    f"{_CAT}GetSeveralTracks": _std(lambda w, who, r: C.GetSeveralTracksRequest(ids=DEMO_TRACK)),
    f"{_CAT}GetAlbum": _std(lambda w, who, r: C.GetAlbumRequest(id=DEMO_ALBUM_ID)),
    f"{_CAT}BatchGetAlbums": _std(lambda w, who, r: C.BatchGetAlbumsRequest(ids=DEMO_ALBUM_ID)),
    f"{_CAT}GetSeveralAlbums": _std(lambda w, who, r: C.GetSeveralAlbumsRequest(ids=DEMO_ALBUM_ID)),
    f"{_CAT}ListAlbumTracks": _std(lambda w, who, r: C.ListAlbumTracksRequest(id=DEMO_ALBUM_ID, limit=2)),
    f"{_CAT}GetArtist": _std(lambda w, who, r: C.GetArtistRequest(id=DEMO_ARTIST)),
    f"{_CAT}BatchGetArtists": _std(lambda w, who, r: C.BatchGetArtistsRequest(ids=DEMO_ARTIST)),
    f"{_CAT}GetSeveralArtists": _std(lambda w, who, r: C.GetSeveralArtistsRequest(ids=DEMO_ARTIST)),
    f"{_CAT}ListArtistAlbums": _std(lambda w, who, r: C.ListArtistAlbumsRequest(id=DEMO_ARTIST, limit=2)),
    f"{_CAT}ListArtistTopTracks": _std(
        lambda w, who, r: C.ListArtistTopTracksRequest(id=DEMO_ARTIST, market="SE")
    ),
    f"{_CAT}Search": _std(lambda w, who, r: C.SearchRequest(q="midnight", type="track", limit=1)),
    f"{_CAT}GetAudioFeatures": _std(lambda w, who, r: C.GetAudioFeaturesRequest(id=DEMO_TRACK)),
    f"{_CAT}BatchGetAudioFeatures": _std(lambda w, who, r: C.BatchGetAudioFeaturesRequest(ids=DEMO_TRACK)),
    f"{_CAT}GetSeveralAudioFeatures": _std(
        lambda w, who, r: C.GetSeveralAudioFeaturesRequest(ids=DEMO_TRACK)
    ),
    # catalog writes
    f"{_CAT}CreateArtist": _std(
        lambda w, who, r: C.CreateArtistRequest(name=f"Walk new {secrets.token_hex(3)}")
    ),
    f"{_CAT}UpdateArtist": _std(lambda w, who, r: C.UpdateArtistRequest(id=w.artist_x, genres=["ambient"])),
    f"{_CAT}CreateAlbum": _std(
        lambda w, who, r: C.CreateAlbumRequest(name="Walk EP", album_type="single", artist_ids=[w.artist_x])
    ),
    f"{_CAT}UpdateAlbum": _std(lambda w, who, r: C.UpdateAlbumRequest(id=w.album, label="Walk Records")),
    f"{_CAT}CreateTrack": _std(
        lambda w, who, r: C.CreateTrackRequest(
            album_id=w.album, name="Walk extra", track_number=next(w.track_numbers)
        )
    ),
    f"{_CAT}UpdateTrack": _std(lambda w, who, r: C.UpdateTrackRequest(id=w.track, isrc="SEWLK2600001")),
    f"{_CAT}IngestTrackAudio": _std(lambda w, who, r: ingest_messages(w.track, wav_bytes(0.5))),
    f"{_CAT}GetIngestJob": _std(lambda w, who, r: C.GetIngestJobRequest(id=w.job)),
    f"{_CAT}TakeDownContent": _take_down,
    f"{_CAT}ListTakedowns": _std(lambda w, who, r: C.ListTakedownsRequest(limit=1)),
    f"{_CAT}RestoreContent": _std(
        lambda w, who, r: C.RestoreContentRequest(collection="tracks", id=w.track, reason="walk")
    ),
    # library
    f"{_LIB}CreatePlaylist": _std(_create_playlist),
    f"{_LIB}GetPlaylist": _std(lambda w, who, r: L.GetPlaylistRequest(id=w.playlist)),
    f"{_LIB}UpdatePlaylist": _std(
        lambda w, who, r: L.UpdatePlaylistRequest(id=w.playlist, description="walked")
    ),
    f"{_LIB}ListMyPlaylists": _std(lambda w, who, r: L.ListMyPlaylistsRequest(limit=1)),
    f"{_LIB}ListUserPlaylists": _std(
        lambda w, who, r: L.ListUserPlaylistsRequest(user_id=w.accounts[Caller.OWNER].user_id, limit=1)
    ),
    f"{_LIB}ListPlaylistItems": _std(lambda w, who, r: L.ListPlaylistItemsRequest(id=w.playlist, limit=2)),
    f"{_LIB}AddPlaylistItems": _std(
        lambda w, who, r: L.AddPlaylistItemsRequest(id=w.playlist, uris=[_track_uri(DEMO_TRACK)])
    ),
    f"{_LIB}UpdatePlaylistItems": _std(
        lambda w, who, r: L.UpdatePlaylistItemsRequest(
            id=w.playlist, range_start=0, insert_before=2, range_length=1
        )
    ),
    f"{_LIB}RemovePlaylistItems": _std(
        lambda w, who, r: L.RemovePlaylistItemsRequest(
            id=w.playlist, items=[L.PlaylistItemRef(uri=_track_uri(DEMO_TRACK))]
        )
    ),
    f"{_LIB}AddPlaylistCollaborator": _std(
        lambda w, who, r: L.AddPlaylistCollaboratorRequest(
            playlist_id=w.playlist, user_id=w.bystander.user_id
        )
    ),
    f"{_LIB}RemovePlaylistCollaborator": _std(
        lambda w, who, r: L.RemovePlaylistCollaboratorRequest(
            playlist_id=w.playlist, user_id=w.bystander.user_id
        )
    ),
    f"{_LIB}FollowPlaylist": _std(lambda w, who, r: L.FollowPlaylistRequest(id=w.playlist)),
    f"{_LIB}UnfollowPlaylist": _std(lambda w, who, r: L.UnfollowPlaylistRequest(id=w.playlist)),
    f"{_LIB}SaveLibraryItems": _std(lambda w, who, r: L.SaveLibraryItemsRequest(uris=_track_uri(DEMO_TRACK))),
    f"{_LIB}RemoveLibraryItems": _std(
        lambda w, who, r: L.RemoveLibraryItemsRequest(uris=_track_uri(DEMO_TRACK))
    ),
    f"{_LIB}CheckLibraryContains": _std(
        lambda w, who, r: L.CheckLibraryContainsRequest(uris=_track_uri(DEMO_TRACK))
    ),
    f"{_LIB}ListSavedTracks": _std(lambda w, who, r: L.ListSavedTracksRequest(limit=1)),
    f"{_LIB}ListSavedAlbums": _std(lambda w, who, r: L.ListSavedAlbumsRequest(limit=1)),
    f"{_LIB}ListFollowedArtists": _std(
        lambda w, who, r: L.ListFollowedArtistsRequest(type="artist", limit=1)
    ),
    # playback
    f"{_PB}GetStreamUrl": _std(lambda w, who, r: P.GetStreamUrlRequest(track_id=DEMO_TRACK, quality="low")),
    f"{_PB}GetPlaybackState": _std(lambda w, who, r: P.GetPlaybackStateRequest()),
    f"{_PB}GetCurrentlyPlaying": _std(lambda w, who, r: P.GetCurrentlyPlayingRequest()),
    f"{_PB}StartPlayback": _std(
        lambda w, who, r: P.StartPlaybackRequest(
            body=P.StartPlaybackBody(uris=[_track_uri(t) for t in AUDIO_TRACKS[:3]])
        )
    ),
    f"{_PB}PausePlayback": _std(lambda w, who, r: P.PausePlaybackRequest()),
    f"{_PB}SkipToNext": _std(lambda w, who, r: P.SkipToNextRequest()),
    f"{_PB}SkipToPrevious": _std(lambda w, who, r: P.SkipToPreviousRequest()),
    f"{_PB}SeekToPosition": _std(lambda w, who, r: P.SeekToPositionRequest(position_ms=1000)),
    f"{_PB}SetRepeatMode": _std(lambda w, who, r: P.SetRepeatModeRequest(state="off")),
    f"{_PB}SetShuffle": _std(lambda w, who, r: P.SetShuffleRequest(state=False)),
    f"{_PB}TransferPlayback": _std(lambda w, who, r: P.TransferPlaybackRequest(device_ids=["walk-speaker"])),
    f"{_PB}ListRecentlyPlayed": _std(lambda w, who, r: P.ListRecentlyPlayedRequest(limit=1)),
    f"{_PB}ReportPlaybackEvents": _std(
        lambda w, who, r: P.ReportPlaybackEventsRequest(
            events=[P.ClientPlaybackEvent(idempotency_key=uuid.uuid4().hex, track_id=w.track, event="start")]
        )
    ),
    f"{_PB}GetRoyaltyReport": _std(
        lambda w, who, r: P.GetRoyaltyReportRequest(
            period_start=(_today() - dt.timedelta(days=6)).isoformat(), period_end=_today().isoformat()
        )
    ),
    f"{_PB}ListArtistDailyStreams": _std(
        lambda w, who, r: P.ListArtistDailyStreamsRequest(artist_id=w.artist_x)
    ),
    f"{_PB}RegisterOfflineDevice": _std(
        lambda w, who, r: P.RegisterOfflineDeviceRequest(
            device_id=w.device, name="Walk phone", public_key=w.device_key
        )
    ),
    f"{_PB}ListOfflineDevices": _std(lambda w, who, r: P.ListOfflineDevicesRequest()),
    f"{_PB}ListOfflineSigningKeys": _std(lambda w, who, r: P.ListOfflineSigningKeysRequest()),
    f"{_PB}CreateOfflineDownload": _std(
        lambda w, who, r: P.CreateOfflineDownloadRequest(
            device_id=w.device, track_id=AUDIO_TRACKS[2], quality="low"
        )
    ),
    f"{_PB}RenewOfflineLicense": _std(
        lambda w, who, r: P.RenewOfflineLicenseRequest(license_id=w.license_to_renew, device_id=w.device)
    ),
    f"{_PB}DeleteOfflineDownload": _std(
        lambda w, who, r: P.DeleteOfflineDownloadRequest(license_id=w.license_to_delete)
    ),
    # recommendations
    f"{_REC}GetDiscoverWeekly": _std(lambda w, who, r: R.GetDiscoverWeeklyRequest(limit=5)),
    f"{_REC}GetRadio": _std(lambda w, who, r: R.GetRadioRequest(seed_track_id=DEMO_TRACK)),
    f"{_REC}GetSimilarTracks": _std(lambda w, who, r: R.GetSimilarTracksRequest(id=DEMO_TRACK, limit=5)),
    f"{_REC}GetSimilarArtists": _std(lambda w, who, r: R.GetSimilarArtistsRequest(id=DEMO_ARTIST)),
    f"{_REC}GetRecommendations": _std(
        lambda w, who, r: R.GetRecommendationsRequest(seed_genres="rock", limit=5)
    ),
    f"{_REC}ListAvailableGenreSeeds": _std(lambda w, who, r: R.ListAvailableGenreSeedsRequest()),
}


# ---- sending a request ------------------------------------------------------------------------

_VARIABLE = re.compile(r"\{([^}=]+)(?:=[^}]*)?\}")


def _query(value: Any, prefix: str, out: list[tuple[str, str]]) -> None:
    """JSON values as query parameters: nested messages as dotted names, lists repeated."""
    if isinstance(value, dict):
        for key, inner in value.items():
            _query(inner, f"{prefix}.{key}" if prefix else key, out)
    elif isinstance(value, list):
        for item in value:
            _query(item, prefix, out)
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    else:
        out.append((prefix, str(value)))


def json_request(route: Route, request: Message) -> tuple[str, str, list[tuple[str, str]], Any]:
    """(HTTP method, path, query, JSON body or None) that the binding transcodes into `request`."""
    assert route.http is not None
    fields = json_format.MessageToDict(request, preserving_proto_field_name=True)
    path = _VARIABLE.sub(lambda m: quote(str(fields.pop(m.group(1), "")), safe=""), route.template)
    body_field = route.http.body
    if body_field == "*":
        return route.verb.upper(), path, [], fields
    body = fields.pop(body_field, None) if body_field else None
    query: list[tuple[str, str]] = []
    _query(fields, "", query)
    return route.verb.upper(), path, query, body


@dataclass(frozen=True)
class Answer:
    status: int | grpc.StatusCode
    detail: str
    # JSON as promised: a JSON document, and Spotify's error object on errors.
    well_formed: bool = True


# RPCs whose JSON route answers a file (google.api.HttpBody), not a JSON document.
BINARY_RPCS = frozenset({"/spotify.auth.v1.AuthService/DownloadDataExport"})


def send_json(client: httpx.Client, route: Route, prepared: Prepared) -> Answer:
    assert not isinstance(prepared.request, list)
    method, path, query, body = json_request(route, prepared.request)
    headers = bearer(prepared.token) if prepared.token else {}
    reply = client.request(method, path, params=query, json=body, headers=headers)
    client.cookies.clear()  # a login's cookie must not sign in the next request
    if reply.status_code == 200 and reply.headers.get("content-type") == "application/zip":
        return Answer(reply.status_code, "", well_formed=route.rpc in BINARY_RPCS)
    try:
        parsed = reply.json()
    except ValueError:
        return Answer(reply.status_code, f"not JSON: {reply.text[:200]!r}", well_formed=False)
    if reply.status_code >= 400:
        error = parsed.get("error") if isinstance(parsed, dict) and set(parsed) == {"error"} else None
        shaped = (
            isinstance(error, dict)
            and error.get("status") == reply.status_code
            and bool(error.get("message"))
        )
        return Answer(reply.status_code, reply.text[:300], well_formed=shaped)
    return Answer(reply.status_code, "", well_formed=isinstance(parsed, (dict, list)))


def send_grpc(channel: grpc.Channel, route: Route, prepared: Prepared) -> Answer:
    metadata = bearer_metadata(prepared.token) if prepared.token else ()
    try:
        call_rpc(channel, route.rpc, prepared.request, metadata, timeout=30)
    except grpc.RpcError as err:
        return Answer(err.code(), err.details() or "")
    return Answer(grpc.StatusCode.OK, "")
