import { useState } from "preact/hooks";
import { del, get, newKey, post, put, request, type Playlist as PlaylistT, type PlaylistItem, type Track } from "../api/client";
import { Status, TrackList, message, useLoad } from "../common";
import { useShared } from "../state";
import { myPlaylists } from "./Playlists";

interface Loaded {
  playlist: PlaylistT;
  items: PlaylistItem[];
}

/**
 * One playlist: play, rename, remove, reorder (drag, or the move buttons from the keyboard),
 * collaborate, follow. Every change names the snapshot it was made on: a change made meanwhile
 * by a collaborator makes the edge refuse it, and the page reloads the list.
 */
export function Playlist(props: { id: string }) {
  const { user, notify } = useShared();
  const loaded = useLoad<Loaded>(async (signal) => {
    const [playlist, page] = await Promise.all([
      get<PlaylistT>(`/v1/playlists/${props.id}`, undefined, signal),
      get<{ items: PlaylistItem[] }>(`/v1/playlists/${props.id}/items`, { limit: 100 }, signal),
    ]);
    return { playlist, items: page.items ?? [] };
  }, [props.id]);
  const [dragging, setDragging] = useState<number | null>(null);

  async function change(action: () => Promise<unknown>, done?: string) {
    try {
      await action();
      if (done) notify(done);
    } catch (err) {
      notify(message(err));
    }
    loaded.reload();
  }

  return (
    <Status loaded={loaded}>
      {({ playlist, items }) => {
        const tracks = items.map((i) => (i.item ?? i.track) as Track).filter(Boolean);
        const owner = playlist.owner?.id === user.id;
        const canEdit = owner || (playlist.collaborative && (playlist.collaborator_ids ?? []).includes(user.id));
        const move = (from: number, to: number) =>
          change(() =>
            put(`/v1/playlists/${playlist.id}/items`, {
              range_start: from,
              insert_before: to > from ? to + 1 : to,
              snapshot_id: playlist.snapshot_id,
            }),
          );
        return (
          <section aria-labelledby="playlist-title">
            <p class="kind">{playlist.collaborative ? "collaborative playlist" : "playlist"}</p>
            <h1 id="playlist-title">{playlist.name}</h1>
            <p class="sub">
              by {playlist.owner?.display_name} · {tracks.length} tracks
            </p>
            <div class="toolbar">
              {owner && (
                <button
                  type="button"
                  onClick={() => {
                    const name = window.prompt("New name", playlist.name)?.trim();
                    if (name)
                      void change(async () => {
                        await put(`/v1/playlists/${playlist.id}`, { name });
                        await myPlaylists(true);
                      }, "Renamed.");
                  }}
                >
                  Rename
                </button>
              )}
              {owner && !playlist.collaborative && (
                <button
                  type="button"
                  onClick={() =>
                    void change(
                      () => put(`/v1/playlists/${playlist.id}`, { collaborative: true, public: false }),
                      "The playlist is collaborative: invite people by their user id.",
                    )
                  }
                >
                  Make collaborative
                </button>
              )}
              {!owner && (
                <button
                  type="button"
                  onClick={() => void change(() => put(`/v1/playlists/${playlist.id}/followers`, { public: true }), "Following.")}
                >
                  Follow
                </button>
              )}
              {!owner && (
                <button
                  type="button"
                  onClick={() => void change(() => del(`/v1/playlists/${playlist.id}/followers`), "Unfollowed.")}
                >
                  Unfollow
                </button>
              )}
            </div>
            {owner && playlist.collaborative && (
              <form
                class="inline"
                aria-label="Invite a collaborator"
                onSubmit={(e) => {
                  e.preventDefault();
                  const form = e.currentTarget as HTMLFormElement;
                  const userId = String(new FormData(form).get("user_id") ?? "").trim();
                  if (userId)
                    void change(
                      () =>
                        post(`/api/library/playlists/${playlist.id}/collaborators`, { user_id: userId }, newKey()).then(
                          () => form.reset(),
                        ),
                      "Invited.",
                    );
                }}
              >
                <label>
                  <span class="visually-hidden">Collaborator's user id</span>
                  <input name="user_id" placeholder="Collaborator's user id" required />
                </label>
                <button type="submit">Invite</button>
              </form>
            )}
            {tracks.length === 0 ? (
              <p>This playlist is empty. Add tracks from search, an album or an artist.</p>
            ) : (
              <div
                class="reorder"
                onDragOver={(e) => dragging !== null && e.preventDefault()}
              >
                <TrackList
                  tracks={tracks}
                  label={`Tracks of ${playlist.name}`}
                  showAlbum
                  actions={(track, index) =>
                    canEdit && (
                      <>
                        <span
                          class="handle"
                          draggable
                          title="Drag to reorder"
                          data-index={index}
                          onDragStart={(e) => {
                            setDragging(index);
                            e.dataTransfer?.setData("text/plain", String(index));
                          }}
                          onDragEnd={() => setDragging(null)}
                          onDragOver={(e) => e.preventDefault()}
                          onDrop={(e) => {
                            e.preventDefault();
                            const from = Number(e.dataTransfer?.getData("text/plain") ?? dragging);
                            setDragging(null);
                            if (!Number.isNaN(from) && from !== index) void move(from, index);
                          }}
                        >
                          ⠿
                        </span>
                        <button
                          type="button"
                          aria-label={`Move ${track.name} up`}
                          disabled={index === 0}
                          onClick={() => void move(index, index - 1)}
                        >
                          ↑
                        </button>
                        <button
                          type="button"
                          aria-label={`Move ${track.name} down`}
                          disabled={index === tracks.length - 1}
                          onClick={() => void move(index, index + 1)}
                        >
                          ↓
                        </button>
                        <button
                          type="button"
                          aria-label={`Remove ${track.name} from the playlist`}
                          onClick={() =>
                            void change(() =>
                              request("DELETE", `/v1/playlists/${playlist.id}/items`, {
                                body: { tracks: [{ uri: track.uri }], snapshot_id: playlist.snapshot_id },
                              }),
                            )
                          }
                        >
                          ✕
                        </button>
                      </>
                    )
                  }
                />
              </div>
            )}
          </section>
        );
      }}
    </Status>
  );
}
