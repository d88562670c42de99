import { get, type Track } from "../api/client";
import { Status, TrackList, useLoad } from "../common";
import { useShared } from "../state";
import { TrackActions } from "./Playlists";

export function DiscoverWeekly() {
  const { player } = useShared();
  const loaded = useLoad(
    (signal) => get<{ tracks: Track[]; generated_at?: string }>("/api/recs/discover-weekly", undefined, signal),
    [],
  );
  return (
    <section aria-labelledby="dw-title">
      <h1 id="dw-title">Discover Weekly</h1>
      <Status loaded={loaded}>
        {(mix) =>
          mix.tracks.length === 0 ? (
            <p>Listen to a few tracks: your first mix comes with the next weekly build.</p>
          ) : (
            <>
              <p class="sub">
                Made for you{mix.generated_at ? ` on ${new Date(mix.generated_at).toLocaleDateString()}` : ""}.
              </p>
              <div class="toolbar">
                <button type="button" class="primary" onClick={() => void player.playQueue(mix.tracks, 0)}>
                  Play all
                </button>
              </div>
              <TrackList tracks={mix.tracks} label="Discover Weekly" showAlbum actions={(t) => <TrackActions track={t} />} />
            </>
          )
        }
      </Status>
    </section>
  );
}

/** A station from a track or an artist: its first page becomes the queue. */
export function Radio(props: { track?: string; artist?: string }) {
  const { player } = useShared();
  const loaded = useLoad(
    (signal) =>
      get<{ tracks: Track[] }>(
        "/api/recs/radio",
        { seed_track_id: props.track, seed_artist_id: props.artist, page_size: 25 },
        signal,
      ),
    [props.track, props.artist],
  );
  return (
    <section aria-labelledby="radio-title">
      <h1 id="radio-title">Radio</h1>
      <Status loaded={loaded}>
        {(station) => (
          <>
            <div class="toolbar">
              <button type="button" class="primary" onClick={() => void player.playQueue(station.tracks, 0)}>
                Play the station
              </button>
            </div>
            <TrackList tracks={station.tracks} label="Radio" showAlbum actions={(t) => <TrackActions track={t} />} />
          </>
        )}
      </Status>
    </section>
  );
}
