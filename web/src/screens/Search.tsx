import { useEffect, useState } from "preact/hooks";
import { get, type SearchResult } from "../api/client";
import { Link, TrackList, message } from "../common";
import { navigate } from "../router";
import { TrackActions } from "./Playlists";

/**
 * Search as you type. Requests wait for a pause in typing (DEBOUNCE_MS), and an answer to an
 * older query is dropped: a fast typist sends a few requests a second at most, well inside the
 * search rate limit.
 */
export const DEBOUNCE_MS = 300;

export function Search(props: { initial: string }) {
  const [query, setQuery] = useState(props.initial);
  const [result, setResult] = useState<SearchResult | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const q = query.trim();
    navigate(q ? `/search?q=${encodeURIComponent(q)}` : "/search", true);
    if (!q) {
      setResult(null);
      return;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => {
      get<SearchResult>("/v1/search", { q, type: "track,album,artist", limit: 10 }, controller.signal).then(
        (found) => {
          setResult(found);
          setError(null);
        },
        (err) => {
          if (!controller.signal.aborted) setError(message(err));
        },
      );
    }, DEBOUNCE_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [query]);

  const tracks = result?.tracks?.items ?? [];
  const albums = result?.albums?.items ?? [];
  const artists = result?.artists?.items ?? [];
  return (
    <section aria-labelledby="search-title">
      <h1 id="search-title">Search</h1>
      <label class="search">
        <span class="visually-hidden">Search tracks, albums and artists</span>
        <input
          type="search"
          value={query}
          placeholder="What do you want to listen to?"
          autofocus
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
        />
      </label>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {result && tracks.length + albums.length + artists.length === 0 && <p role="status">Nothing found.</p>}
      {artists.length > 0 && (
        <>
          <h2>Artists</h2>
          <ul class="cards" aria-label="Artists">
            {artists.map((a) => (
              <li key={a.id}>
                <Link to={`/artist/${a.id}`}>{a.name}</Link>
              </li>
            ))}
          </ul>
        </>
      )}
      {albums.length > 0 && (
        <>
          <h2>Albums</h2>
          <ul class="cards" aria-label="Albums">
            {albums.map((a) => (
              <li key={a.id}>
                <Link to={`/album/${a.id}`}>{a.name}</Link>
                <span class="sub">{(a.artists ?? []).map((x) => x.name).join(", ")}</span>
              </li>
            ))}
          </ul>
        </>
      )}
      {tracks.length > 0 && (
        <>
          <h2>Tracks</h2>
          <TrackList tracks={tracks} label="Tracks found" showAlbum actions={(t) => <TrackActions track={t} />} />
        </>
      )}
    </section>
  );
}
