import { useEffect, useState } from "preact/hooks";
import { artistNames, duration, Link } from "./common";
import { NextIcon, PauseIcon, PlayIcon, PreviousIcon } from "./icons";
import type { Player, PlayerState } from "./player";

/** The bar at the bottom: what plays, controls, position, volume, quality and why. */
export function PlayerBar(props: { player: Player }) {
  const { player } = props;
  const [state, setState] = useState<PlayerState | null>(null);
  useEffect(() => player.subscribe(setState), [player]);
  if (!state) return null;
  const track = state.queue[state.index];
  return (
    <footer class="playerbar" aria-label="Player">
      <div class="now">
        {track ? (
          <>
            <span class="name" data-testid="now-playing" data-track-id={track.id}>
              {track.name}
            </span>
            <span class="sub">
              {artistNames(track)}
              {track.album && (
                <>
                  {" · "}
                  <Link to={`/album/${track.album.id}`}>{track.album.name}</Link>
                </>
              )}
            </span>
          </>
        ) : (
          <span class="sub">Nothing playing</span>
        )}
      </div>
      <div class="controls">
        <div class="buttons">
          <button type="button" aria-label="Previous" onClick={() => void player.previous()} disabled={!track}>
            <PreviousIcon />
          </button>
          <button
            type="button"
            class="primary round"
            aria-label={state.playing ? "Pause" : "Play"}
            onClick={() => void player.toggle()}
            disabled={!track}
          >
            {state.playing ? <PauseIcon /> : <PlayIcon />}
          </button>
          <button
            type="button"
            aria-label="Next"
            onClick={() => void player.next()}
            disabled={!track || state.index + 1 >= state.queue.length}
          >
            <NextIcon />
          </button>
        </div>
        <div class="seek">
          <span class="time">{duration(state.positionMs)}</span>
          <input
            type="range"
            aria-label="Position"
            min={0}
            max={Math.max(1, state.durationMs)}
            step={1000}
            value={state.positionMs}
            disabled={!track}
            aria-valuetext={`${duration(state.positionMs)} of ${duration(state.durationMs)}`}
            onChange={(e) => player.seek(Number((e.target as HTMLInputElement).value))}
          />
          <span class="time">{duration(state.durationMs)}</span>
        </div>
      </div>
      <div class="side">
        <label class="volume">
          <span class="visually-hidden">Volume</span>
          <input
            type="range"
            aria-label="Volume"
            min={0}
            max={1}
            step={0.05}
            value={state.volume}
            onInput={(e) => player.setVolume(Number((e.target as HTMLInputElement).value))}
          />
        </label>
        <span class="quality" data-testid="quality" title={state.qualityReason}>
          {state.qualityKbps ? `${state.qualityKbps} kbps · ${state.qualityReason}` : ""}
        </span>
        {track && (
          <Link to={`/radio?track=${track.id}`} label={`Radio from ${track.name}`}>
            Radio
          </Link>
        )}
      </div>
      <p class="player-error" role="alert">
        {state.loading ? "Loading…" : state.error ?? ""}
      </p>
    </footer>
  );
}
