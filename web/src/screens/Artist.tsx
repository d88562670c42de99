import { get, type Album, type Artist as ArtistT, type Track } from "../api/client";
import { Link, Status, TrackList, useLoad } from "../common";
import { TrackActions } from "./Playlists";

interface ArtistPage {
  artist: ArtistT;
  top: Track[];
  albums: Album[];
  related: ArtistT[];
}

export function Artist(props: { id: string }) {
  const loaded = useLoad<ArtistPage>(async (signal) => {
    const [artist, top, albums, related] = await Promise.all([
      get<ArtistT>(`/v1/artists/${props.id}`, undefined, signal),
      get<{ tracks: Track[] }>(`/v1/artists/${props.id}/top-tracks`, undefined, signal),
      get<{ items: Album[] }>(`/v1/artists/${props.id}/albums`, { limit: 50 }, signal),
      // Related artists come from the recommender, which may have no model yet: the page does without.
      get<{ artists: ArtistT[] }>(`/v1/artists/${props.id}/related-artists`, undefined, signal).catch(() => ({
        artists: [],
      })),
    ]);
    return { artist, top: top.tracks ?? [], albums: albums.items ?? [], related: related.artists ?? [] };
  }, [props.id]);
  return (
    <Status loaded={loaded}>
      {({ artist, top, albums, related }) => (
        <section aria-labelledby="artist-title">
          <p class="kind">artist</p>
          <h1 id="artist-title">{artist.name}</h1>
          {artist.genres?.length > 0 && <p class="sub">{artist.genres.join(", ")}</p>}
          <div class="toolbar">
            <Link class="button" to={`/radio?artist=${artist.id}`}>
              Start radio
            </Link>
          </div>
          <h2>Top tracks</h2>
          <TrackList tracks={top} label="Top tracks" showAlbum actions={(t) => <TrackActions track={t} />} />
          <h2>Albums</h2>
          <ul class="cards" aria-label="Albums">
            {albums.map((a) => (
              <li key={a.id}>
                <Link to={`/album/${a.id}`}>{a.name}</Link>
                <span class="sub">{a.release_date?.slice(0, 4)}</span>
              </li>
            ))}
          </ul>
          {related.length > 0 && (
            <>
              <h2>Fans also like</h2>
              <ul class="cards" aria-label="Related artists">
                {related.map((a) => (
                  <li key={a.id}>
                    <Link to={`/artist/${a.id}`}>{a.name}</Link>
                  </li>
                ))}
              </ul>
            </>
          )}
        </section>
      )}
    </Status>
  );
}
