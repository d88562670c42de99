"""meshkit.links spells every kind's links as Spotify does."""

from meshkit import links


def test_every_link_of_a_track() -> None:
    got = links.of("https://api.example", "track", "2Wp20iMijRgltMiNjvIeLo")
    assert got.uri == "spotify:track:2Wp20iMijRgltMiNjvIeLo"
    assert got.href == "https://api.example/v1/tracks/2Wp20iMijRgltMiNjvIeLo"
    assert got.open_url == "https://api.example/track/2Wp20iMijRgltMiNjvIeLo"


def test_users_and_playlists_follow_the_same_pattern() -> None:
    assert links.href("http://b", "user", "u1") == "http://b/v1/users/u1"
    assert links.open_url("http://b", "playlist", "p1") == "http://b/playlist/p1"
