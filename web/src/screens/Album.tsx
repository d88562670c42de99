import { get, type Album as AlbumT, type Track } from "../api/client";
import { Link, Status, TrackList, saveToLibrary, useLoad } from "../common";
import { useShared } from "../state";
import { TrackActions } from "./Playlists";

export function Album(props: { id: string }) {
  const { notify } = useShared();
  const loaded = useLoad((signal) => get<AlbumT>(`/v1/albums/${props.id}`, undefined, signal), [props.id]);
  return (
    <Status loaded={loaded}>
      {(album) => {
        // The album's page lists its tracks without the album: put it back for the player bar.
        const { tracks: _page, ...bare } = album;
        const tracks: Track[] = (album.tracks?.items ?? []).map((t) => ({ ...t, album: bare as AlbumT }));
        return (
          <section aria-labelledby="album-title">
            <p class="kind">{album.album_type || "album"}</p>
            <h1 id="album-title">{album.name}</h1>
            <p class="sub">
              {(album.artists ?? []).map((a, i) => (
                <>
                  {i > 0 && ", "}
                  <Link to={`/artist/${a.id}`}>{a.name}</Link>
                </>
              ))}
              {album.release_date && ` · ${album.release_date.slice(0, 4)}`} · {tracks.length} tracks
            </p>
            <div class="toolbar">
              <SaveButton uri={album.uri} what="album" notify={notify} />
            </div>
            <TrackList tracks={tracks} label={`Tracks of ${album.name}`} actions={(t) => <TrackActions track={t} />} />
          </section>
        );
      }}
    </Status>
  );
}

export function SaveButton(props: { uri: string; what: string; notify: (m: string) => void }) {
  return (
    <button type="button" onClick={() => void saveToLibrary(props.uri, `the ${props.what}`, props.notify)}>
      Save to library
    </button>
  );
}
