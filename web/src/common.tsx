/** Pieces every screen uses: links, loading and error states, track rows. */
import type { ComponentChildren } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError, put, type Track } from "./api/client";
import { PlayIcon } from "./icons";
import { onLink } from "./router";
import { useShared } from "./state";

export function Link(props: { to: string; children: ComponentChildren; class?: string; label?: string }) {
  return (
    <a href={`/app${props.to}`} class={props.class} aria-label={props.label} onClick={(e) => onLink(e, props.to)}>
      {props.children}
    </a>
  );
}

export function message(err: unknown): string {
  return err instanceof ApiError ? err.sentence : "Something went wrong in this page.";
}

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Load once per `deps`; errors become a sentence. A 401 also signs the page out (api/client). */
export function useLoad<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean }>({
    data: null,
    error: null,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true, error: null }));
    load(controller.signal).then(
      (data) => !controller.signal.aborted && setState({ data, error: null, loading: false }),
      (err) => !controller.signal.aborted && setState({ data: null, error: message(err), loading: false }),
    );
    return () => controller.abort();
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export function Status<T>(props: { loaded: Loaded<T>; children: (data: T) => ComponentChildren }) {
  const { loaded } = props;
  if (loaded.error)
    return (
      <p class="error" role="alert">
        {loaded.error}{" "}
        <button type="button" onClick={loaded.reload}>
          Try again
        </button>
      </p>
    );
  if (loaded.loading || loaded.data === null) return <p aria-busy="true">Loading…</p>;
  return <>{props.children(loaded.data)}</>;
}

export const duration = (ms: number): string => {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
};

export const artistNames = (track: Track): string => (track.artists ?? []).map((a) => a.name).join(", ");

/** Tracks as a list: play any of them (the list becomes the queue), plus per-row actions. */
export function TrackList(props: {
  tracks: Track[];
  label: string;
  showAlbum?: boolean;
  actions?: (track: Track, index: number) => ComponentChildren;
}) {
  const { player } = useShared();
  return (
    <ol class="tracks" aria-label={props.label}>
      {props.tracks.map((track, index) => (
        <li key={`${track.id}-${index}`} class="track" data-track-id={track.id}>
          <button
            type="button"
            class="play"
            aria-label={`Play ${track.name}`}
            onClick={() => void player.playQueue(props.tracks, index)}
          >
            <PlayIcon />
          </button>
          <span class="title">
            <span class="name">{track.name}</span>
            <span class="sub">
              {(track.artists ?? []).map((a, i) => (
                <>
                  {i > 0 && ", "}
                  <Link to={`/artist/${a.id}`}>{a.name}</Link>
                </>
              ))}
              {props.showAlbum && track.album && (
                <>
                  {" · "}
                  <Link to={`/album/${track.album.id}`}>{track.album.name}</Link>
                </>
              )}
            </span>
          </span>
          <span class="time">{duration(track.duration_ms)}</span>
          {props.actions && <span class="actions">{props.actions(track, index)}</span>}
        </li>
      ))}
    </ol>
  );
}

/** Save a track or an album (by URI) to the listener's library, and say how it went. */
export async function saveToLibrary(uri: string, what: string, notify: (m: string) => void): Promise<void> {
  try {
    await put("/v1/me/library", undefined, { uris: uri });
    notify(`Saved ${what} to your library.`);
  } catch (err) {
    notify(message(err));
  }
}
