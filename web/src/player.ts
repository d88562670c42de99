/**
 * The player: the browser's own <audio> element on the signed media URL (it makes the Range
 * requests), a client-side queue, playback events, and the play state kept in the mesh.
 *
 * - Quality: the server picks it from the subscription and what the page says about the
 *   connection (Network Information API where the browser has it); the bar shows which and why.
 * - A signed URL that expires mid-track makes the media origin refuse the next Range request.
 *   Browsers do not say so promptly (Chromium retries the refused request quietly for a long
 *   time), so the player watches for it: playback waiting for data on an expired URL, a resume
 *   or seek after it expired, or a media error, all make it ask for a new URL and resume at the
 *   same position.
 * - Events carry one idempotency key per playback session (user_track_sessionStart), and are
 *   sent in small batches; a batch the edge refused for a moment is sent again with its keys.
 */
import { ApiError, get, newKey, post, put, type PlaybackEvent, type StreamUrl, type Track } from "./api/client";

export type EventName = "start" | "progress" | "pause" | "complete" | "skip";

export interface PlayerState {
  queue: Track[];
  index: number;
  playing: boolean;
  positionMs: number;
  durationMs: number;
  qualityKbps: number | null;
  qualityReason: string;
  loading: boolean;
  error: string | null;
  volume: number;
}

/** How often a progress event is reported while playing. */
const PROGRESS_EVERY_MS = 10_000;
/** Streams count at 30 s of playback, or at half of a track shorter than a minute (the counter's rule). */
export const thresholdMs = (durationMs: number): number =>
  durationMs > 0 && durationMs < 60_000 ? Math.floor((durationMs + 1) / 2) : 30_000;
/** New URLs asked for one track before the player gives up (an origin refusing every URL). */
const URL_REFRESHES = 3;
/** A URL this close to its expiry is renewed before a resume or a seek needs the origin again. */
const EXPIRY_MARGIN_MS = 5_000;
/** How often a player waiting for data checks whether its URL expired meanwhile. */
const STALL_CHECK_MS = 1_000;

const DEVICE_KEY = "spotify-mesh.device-id";

function deviceId(): string {
  let id = localStorage.getItem(DEVICE_KEY);
  if (!id) {
    id = `web-${newKey()}`;
    localStorage.setItem(DEVICE_KEY, id);
  }
  return id;
}

interface NetworkInformation {
  type?: string;
  effectiveType?: string;
  downlink?: number;
}

/** What the page knows of its link, as GetStreamUrl's `connection` and `bandwidth_kbps`. */
function connection(): { connection: string; bandwidth_kbps: number } {
  const info = (navigator as Navigator & { connection?: NetworkInformation }).connection;
  const type = info?.type;
  const known = type === "cellular" || type === "wifi" || type === "ethernet" ? type : "unknown";
  const kbps = info?.downlink ? Math.round(info.downlink * 1000) : 0;
  return { connection: known, bandwidth_kbps: kbps };
}

function reasonFor(stream: StreamUrl, product: string): string {
  const higher = stream.alternatives.some((a) => a.quality_kbps > stream.quality_kbps);
  if (!higher) return product === "premium" ? "highest quality" : "highest quality on the free plan";
  const link = connection();
  if (link.connection === "cellular") return "lowered for a cellular connection";
  if (link.bandwidth_kbps > 0) return `lowered for a ${link.bandwidth_kbps} kbps connection`;
  return "chosen for your connection";
}

type Subscriber = (state: PlayerState) => void;

export class Player {
  readonly audio: HTMLAudioElement;
  private state: PlayerState = {
    queue: [],
    index: -1,
    playing: false,
    positionMs: 0,
    durationMs: 0,
    qualityKbps: null,
    qualityReason: "",
    loading: false,
    error: null,
    volume: 1,
  };
  private subscribers = new Set<Subscriber>();
  private user: { id: string; product: string } | null = null;
  private session: { key: string; track: Track; lastProgressMs: number; counted: boolean } | null = null;
  private refreshes = 0;
  private pendingEvents: PlaybackEvent[] = [];
  private flushing = false;
  private retryTimer: number | null = null;
  private resumeAtMs: number | null = null;
  private expiresAt = Infinity;
  private stallTimer: number | null = null;

  constructor(audio?: HTMLAudioElement) {
    this.audio = audio ?? new Audio();
    this.audio.preload = "auto";
    // In the document (not shown: the bar is its face), where tools and tests can find it.
    this.audio.hidden = true;
    if (!this.audio.isConnected) document.body.appendChild(this.audio);
    this.audio.addEventListener("timeupdate", () => this.onTime());
    this.audio.addEventListener("playing", () => {
      this.watchStall(false);
      this.refreshes = 0; // the URL works: a later expiry starts a fresh count
      this.set({ playing: true, loading: false, error: null });
    });
    this.audio.addEventListener("waiting", () => this.watchStall(true));
    this.audio.addEventListener("stalled", () => this.watchStall(true));
    this.audio.addEventListener("pause", () => this.set({ playing: false }));
    this.audio.addEventListener("ended", () => this.onEnded());
    this.audio.addEventListener("error", () => void this.onMediaError());
    this.audio.addEventListener("loadedmetadata", () => this.onLoaded());
    window.addEventListener("pagehide", () => this.flush(true));
  }

  subscribe(fn: Subscriber): () => void {
    this.subscribers.add(fn);
    fn(this.state);
    return () => this.subscribers.delete(fn);
  }

  get current(): Track | null {
    return this.state.queue[this.state.index] ?? null;
  }

  signedIn(user: { id: string; product: string } | null): void {
    this.user = user;
    if (!user) this.stop();
  }

  /** Play `queue` from `index` (an album, a playlist, a radio). */
  async playQueue(queue: Track[], index = 0): Promise<void> {
    this.endSession("skip");
    this.set({ queue, index });
    await this.load(0);
  }

  async toggle(): Promise<void> {
    if (!this.current) return;
    if (this.audio.paused) {
      await this.resume();
    } else {
      this.audio.pause();
      this.record("pause");
      void put("/v1/me/player/pause", undefined, { request_id: newKey() }).catch(() => undefined);
    }
  }

  async next(): Promise<void> {
    if (this.state.index + 1 >= this.state.queue.length) return;
    this.endSession("skip");
    this.set({ index: this.state.index + 1 });
    await this.load(0);
  }

  async previous(): Promise<void> {
    // Like every player: back to the start first, to the previous track when already near it.
    if (this.audio.currentTime > 3 || this.state.index === 0) {
      this.seek(0);
      return;
    }
    this.endSession("skip");
    this.set({ index: this.state.index - 1 });
    await this.load(0);
  }

  seek(positionMs: number): void {
    if (!this.current) return;
    this.set({ positionMs });
    if (this.urlExpiring()) void this.renewUrl(positionMs, !this.audio.paused);
    else this.audio.currentTime = positionMs / 1000;
    void put("/v1/me/player/seek", undefined, { position_ms: Math.round(positionMs), request_id: newKey() }).catch(
      () => undefined,
    );
  }

  setVolume(volume: number): void {
    this.audio.volume = Math.min(1, Math.max(0, volume));
    this.set({ volume: this.audio.volume });
  }

  stop(): void {
    this.watchStall(false);
    this.endSession("pause");
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.set({ queue: [], index: -1, playing: false, positionMs: 0, qualityKbps: null, qualityReason: "" });
  }

  // -- internals ----------------------------------------------------------------------------------

  private set(patch: Partial<PlayerState>): void {
    this.state = { ...this.state, ...patch };
    this.subscribers.forEach((fn) => fn(this.state));
  }

  private async streamUrl(track: Track): Promise<StreamUrl> {
    return get<StreamUrl>("/api/playback/stream", { track_id: track.id, quality: "auto", ...connection() });
  }

  /** Load the current track's stream and play it from `positionMs`. */
  private async load(positionMs: number): Promise<void> {
    const track = this.current;
    if (!track) return;
    this.refreshes = 0;
    this.set({ loading: true, error: null, positionMs, durationMs: track.duration_ms });
    try {
      const stream = await this.streamUrl(track);
      if (this.current?.id !== track.id) return; // the listener moved on meanwhile
      this.applyStream(stream, positionMs);
      this.session = {
        key: `${this.user?.id ?? "anonymous"}_${track.id}_${Date.now()}`,
        track,
        lastProgressMs: positionMs,
        counted: false,
      };
      await this.audio.play();
      this.record("start", positionMs);
      void put(
        "/v1/me/player/play",
        { uris: [track.uri], position_ms: Math.round(positionMs) },
        { request_id: newKey() },
      ).catch(() => undefined);
    } catch (err) {
      this.fail(err);
    }
  }

  private applyStream(stream: StreamUrl, positionMs: number): void {
    this.resumeAtMs = positionMs > 0 ? positionMs : null;
    this.expiresAt = stream.expires_at ? Date.parse(stream.expires_at) : Infinity;
    this.audio.src = stream.url;
    this.set({
      qualityKbps: stream.quality_kbps,
      qualityReason: reasonFor(stream, this.user?.product ?? "free"),
      durationMs: stream.duration_ms || this.state.durationMs,
    });
  }

  private async resume(): Promise<void> {
    try {
      if (this.urlExpiring()) await this.renewUrl(this.state.positionMs);
      else await this.audio.play();
      this.record("start");
      void put("/v1/me/player/play", {}, { request_id: newKey() }).catch(() => undefined);
    } catch (err) {
      this.fail(err);
    }
  }

  private onLoaded(): void {
    if (this.resumeAtMs !== null) {
      this.audio.currentTime = this.resumeAtMs / 1000;
      this.resumeAtMs = null;
    }
  }

  private onTime(): void {
    const positionMs = Math.round(this.audio.currentTime * 1000);
    this.set({ positionMs });
    const session = this.session;
    if (!session || this.audio.paused) return;
    const threshold = thresholdMs(this.state.durationMs);
    // A progress event as the position passes the counting threshold, and every 10 s.
    if ((!session.counted && positionMs >= threshold) || positionMs - session.lastProgressMs >= PROGRESS_EVERY_MS) {
      session.counted ||= positionMs >= threshold;
      session.lastProgressMs = positionMs;
      this.record("progress", positionMs);
    }
  }

  private onEnded(): void {
    this.endSession("complete");
    if (this.state.index + 1 < this.state.queue.length) {
      this.set({ index: this.state.index + 1 });
      void this.load(0);
    } else {
      this.set({ playing: false });
    }
  }

  /** The element could not fetch or decode: a network failure gets a new URL. */
  private async onMediaError(): Promise<void> {
    const code = this.audio.error?.code;
    if (!this.current || !this.audio.getAttribute("src")) return;
    if (code !== MediaError.MEDIA_ERR_NETWORK && code !== MediaError.MEDIA_ERR_SRC_NOT_SUPPORTED) {
      this.set({ error: "This track cannot be played here.", loading: false });
      return;
    }
    await this.renewUrl(this.state.positionMs);
  }

  private urlExpiring(): boolean {
    return Date.now() >= this.expiresAt - EXPIRY_MARGIN_MS;
  }

  /** While playback waits for data, check every second whether the URL expired under it. */
  private watchStall(on: boolean): void {
    if (this.stallTimer !== null) window.clearInterval(this.stallTimer);
    this.stallTimer = null;
    if (!on) return;
    this.stallTimer = window.setInterval(() => {
      const waiting = !this.audio.paused && this.audio.readyState < HTMLMediaElement.HAVE_FUTURE_DATA;
      if (waiting && Date.now() >= this.expiresAt) {
        this.watchStall(false);
        void this.renewUrl(this.state.positionMs);
      }
    }, STALL_CHECK_MS);
  }

  /** A new signed URL for the current track, from `positionMs` (and playing, unless told not to). */
  private async renewUrl(positionMs: number, play = true): Promise<void> {
    const track = this.current;
    if (!track) return;
    if (this.refreshes >= URL_REFRESHES) {
      this.set({ error: "The audio could not be loaded. Try again later.", loading: false });
      return;
    }
    this.refreshes += 1;
    try {
      const stream = await this.streamUrl(track);
      if (this.current?.id !== track.id) return;
      this.applyStream(stream, positionMs);
      if (play) await this.audio.play();
    } catch (err) {
      this.fail(err);
    }
  }

  private endSession(event: "skip" | "complete" | "pause"): void {
    if (!this.session) return;
    this.record(event, event === "complete" ? this.state.durationMs : this.state.positionMs);
    this.session = null;
    this.flush();
  }

  private record(event: EventName, positionMs = this.state.positionMs): void {
    const session = this.session;
    if (!session) return;
    this.pendingEvents.push({
      idempotency_key: session.key,
      track_id: session.track.id,
      event,
      position_ms: Math.round(positionMs),
      track_duration_ms: this.state.durationMs,
      device_id: deviceId(),
      device_type: "web",
      client_timestamp: new Date().toISOString(),
      context_uri: "",
    });
    this.flush();
  }

  /** Send what is pending; on page exit, with keepalive so the request outlives the page. */
  private flush(leaving = false): void {
    if (this.pendingEvents.length === 0) return;
    if (leaving) {
      void fetch("/api/playback/events", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ events: this.pendingEvents.splice(0, 500) }),
        credentials: "same-origin",
        keepalive: true,
      });
      return;
    }
    if (this.flushing || this.retryTimer !== null) return;
    const batch = this.pendingEvents.splice(0, 500);
    this.flushing = true;
    post("/api/playback/events", { events: batch })
      .catch((err: unknown) => {
        // Refused for a moment (503, 429, no network): sent again later with the same keys.
        if (err instanceof ApiError && (err.status === 0 || err.status === 429 || err.status >= 500)) {
          this.pendingEvents.unshift(...batch);
          const waitS = err.retryAfterS ?? 5;
          this.retryTimer = window.setTimeout(() => {
            this.retryTimer = null;
            this.flush();
          }, waitS * 1000);
        }
      })
      .finally(() => {
        this.flushing = false;
        if (this.pendingEvents.length > 0 && this.retryTimer === null) this.flush();
      });
  }

  private fail(err: unknown): void {
    const message = err instanceof ApiError ? err.sentence : "Playback failed in this browser.";
    if (err instanceof DOMException && err.name === "NotAllowedError") {
      this.set({ loading: false, error: "Press play to start the audio." });
      return;
    }
    this.set({ loading: false, error: message });
  }
}
