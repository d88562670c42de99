import { get, type Album, type Track } from "../api/client";
import { Link, Status, TrackList, useLoad } from "../common";
import { TrackActions } from "./Playlists";

export function Library() {
  const loaded = useLoad(async (signal) => {
    const [tracks, albums] = await Promise.all([
      get<{ items: { track: Track }[] }>("/v1/me/tracks", { limit: 50 }, signal),
      get<{ items: { album: Album }[] }>("/v1/me/albums", { limit: 50 }, signal),
    ]);
    return { tracks: tracks.items.map((i) => i.track), albums: albums.items.map((i) => i.album) };
  }, []);
  return (
    <section aria-labelledby="library-title">
      <h1 id="library-title">Your library</h1>
      <Status loaded={loaded}>
        {({ tracks, albums }) => (
          <>
            <h2>Albums</h2>
            {albums.length === 0 ? (
              <p>No saved albums yet.</p>
            ) : (
              <ul class="cards" aria-label="Saved albums">
                {albums.map((a) => (
                  <li key={a.id}>
                    <Link to={`/album/${a.id}`}>{a.name}</Link>
                  </li>
                ))}
              </ul>
            )}
            <h2>Liked tracks</h2>
            {tracks.length === 0 ? (
              <p>No saved tracks yet.</p>
            ) : (
              <TrackList tracks={tracks} label="Saved tracks" showAlbum actions={(t) => <TrackActions track={t} />} />
            )}
          </>
        )}
      </Status>
    </section>
  );
}
