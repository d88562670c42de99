/**
 * The edge's JSON API, typed from gen/openapi.json (schema.d.ts is generated at build time).
 *
 * Requests go to the same origin with the HttpOnly session cookie; the page never sees the token.
 * Every failure becomes an ApiError carrying the edge's status and message (Spotify's error shape),
 * so screens show a sentence, never a blank page.
 */
import type { components } from "./schema";

export type Schemas = components["schemas"];
export type Track = Schemas["spotify.catalog.v1.Track"];
export type Album = Schemas["spotify.catalog.v1.Album"];
export type Artist = Schemas["spotify.catalog.v1.Artist"];
export type User = Schemas["spotify.auth.v1.User"];
export type Playlist = Schemas["spotify.library.v1.Playlist"];
export type PlaylistItem = Schemas["spotify.library.v1.PlaylistItem"];
export type StreamUrl = Schemas["spotify.playback.v1.GetStreamUrlResponse"];
export type PlaybackEvent = Schemas["spotify.playback.v1.ClientPlaybackEvent"];
export type SearchResult = Schemas["spotify.catalog.v1.SearchResponse"];
export type AuditEvent = Schemas["spotify.auth.v1.AuditEvent"];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Seconds to wait before trying again (429, some 503s), when the edge said. */
    readonly retryAfterS: number | null = null,
  ) {
    super(message);
  }

  /** What to tell the listener. */
  get sentence(): string {
    switch (this.status) {
      case 0:
        return "The service cannot be reached. Check your connection and try again.";
      case 401:
        return "Your session has ended. Sign in again.";
      case 403:
        return `Not allowed: ${this.message}`;
      case 429:
        return `Too many requests. Try again in ${this.retryAfterS ?? 1} s.`;
      case 503:
      case 504:
        return "The service is busy or restarting. Try again in a moment.";
      default:
        return this.message || `Request failed (${this.status}).`;
    }
  }
}

type Listener = (error: ApiError) => void;
const unauthorizedListeners = new Set<Listener>();

/** Called on every 401: the session is gone (expired, signed out elsewhere, banned). */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  /** Sent as idempotency-key, so a retried write takes effect once. */
  idempotencyKey?: string;
  signal?: AbortSignal;
}

function url(path: string, query?: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  if (options.idempotencyKey) headers["idempotency-key"] = options.idempotencyKey;
  let response: Response;
  try {
    response = await fetch(url(path, options.query), {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "same-origin",
      signal: options.signal,
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === "AbortError") throw err;
    throw new ApiError(0, "network error");
  }
  const text = await response.text();
  if (!response.ok) {
    let message = response.statusText;
    try {
      message = JSON.parse(text).error?.message ?? message;
    } catch {
      // not JSON (a proxy's page): keep the status text
    }
    const retry = response.headers.get("retry-after");
    const error = new ApiError(response.status, message, retry === null ? null : Number(retry));
    if (response.status === 401) unauthorizedListeners.forEach((listener) => listener(error));
    throw error;
  }
  return (text ? JSON.parse(text) : {}) as T;
}

export const get = <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>("GET", path, { query, signal });
// No body unless there is one: a route whose HTTP rule takes none gets none.
export const post = <T>(path: string, body?: unknown, idempotencyKey?: string) =>
  request<T>("POST", path, { body, idempotencyKey });
export const put = <T>(path: string, body?: unknown, query?: Query) => request<T>("PUT", path, { body, query });
export const del = <T>(path: string, body?: unknown, query?: Query) => request<T>("DELETE", path, { body, query });

/** A fresh key for one logical write (kept by the caller across its retries). */
export const newKey = (): string => crypto.randomUUID();
