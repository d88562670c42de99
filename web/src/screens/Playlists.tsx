import { useEffect, useState } from "preact/hooks";
import { get, newKey, post, type Playlist, type Track } from "../api/client";
import { HeartIcon } from "../icons";
import { Link, Status, message, saveToLibrary, useLoad } from "../common";
import { navigate } from "../router";
import { useShared } from "../state";

type Page = { items: Playlist[] };

/** The user's playlists, shared by every "Add to playlist" menu; refreshed after a change. */
let mine: Promise<Playlist[]> | null = null;
export function myPlaylists(refresh = false): Promise<Playlist[]> {
  if (refresh || mine === null) {
    mine = get<Page>("/v1/me/playlists", { limit: 50 }).then((page) => page.items ?? []);
    mine.catch(() => (mine = null));
  }
  return mine;
}

export function Playlists() {
  const { notify } = useShared();
  const loaded = useLoad(() => myPlaylists(true), []);
  const [creating, setCreating] = useState(false);
  // One key per playlist being created: a double submit creates one playlist.
  const [createKey, setCreateKey] = useState(newKey);

  async function create(event: Event) {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const name = String(new FormData(form).get("name") ?? "").trim();
    if (!name) return;
    setCreating(true);
    try {
      const playlist = await post<Playlist>("/v1/me/playlists", { name, public: false, request_id: createKey });
      setCreateKey(newKey());
      form.reset();
      await myPlaylists(true);
      navigate(`/playlist/${playlist.id}`);
    } catch (err) {
      notify(message(err));
    } finally {
      setCreating(false);
    }
  }

  return (
    <section aria-labelledby="playlists-title">
      <h1 id="playlists-title">Playlists</h1>
      <form class="inline" onSubmit={create} aria-label="Create a playlist">
        <label>
          <span class="visually-hidden">New playlist name</span>
          <input name="name" placeholder="New playlist name" required maxLength={100} />
        </label>
        <button type="submit" class="primary" disabled={creating}>
          Create playlist
        </button>
      </form>
      <Status loaded={loaded}>
        {(playlists) =>
          playlists.length === 0 ? (
            <p>No playlists yet.</p>
          ) : (
            <ul class="cards" aria-label="Your playlists">
              {playlists.map((p) => (
                <li key={p.id}>
                  <Link to={`/playlist/${p.id}`}>{p.name}</Link>
                  <span class="sub">
                    {p.collaborative ? "collaborative · " : ""}
                    {p.owner?.display_name}
                  </span>
                </li>
              ))}
            </ul>
          )
        }
      </Status>
    </section>
  );
}

/** "Add to playlist" from any track row: a menu of the user's playlists. */
export function AddToPlaylist(props: { track: Track }) {
  const { notify, user } = useShared();
  const [open, setOpen] = useState(false);
  const [playlists, setPlaylists] = useState<Playlist[] | null>(null);
  useEffect(() => {
    if (open) myPlaylists().then(setPlaylists, (err) => notify(message(err)));
  }, [open]);

  async function add(playlist: Playlist) {
    setOpen(false);
    try {
      await post(`/v1/playlists/${playlist.id}/items`, { uris: [props.track.uri] }, newKey());
      notify(`Added ${props.track.name} to ${playlist.name}.`);
    } catch (err) {
      notify(message(err));
    }
  }

  const writable = (playlists ?? []).filter((p) => p.owner?.id === user.id || p.collaborative);
  return (
    <div class="menu">
      <button
        type="button"
        aria-haspopup="true"
        aria-expanded={open}
        aria-label={`Add ${props.track.name} to a playlist`}
        onClick={() => setOpen(!open)}
      >
        +
      </button>
      {open && (
        <ul class="popup" aria-label="Playlists" onKeyDown={(e) => e.key === "Escape" && setOpen(false)}>
          {playlists === null && <li>Loading…</li>}
          {playlists !== null && writable.length === 0 && <li>Create a playlist first.</li>}
          {writable.map((p) => (
            <li key={p.id}>
              <button type="button" onClick={() => void add(p)}>
                {p.name}
              </button>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** What every track row offers: save it to the library, add it to a playlist. */
export function TrackActions(props: { track: Track }) {
  const { notify } = useShared();
  return (
    <>
      <button type="button" aria-label={`Save ${props.track.name} to your library`} onClick={() => void saveToLibrary(props.track.uri, props.track.name, notify)}>
        <HeartIcon />
      </button>
      <AddToPlaylist track={props.track} />
    </>
  );
}
