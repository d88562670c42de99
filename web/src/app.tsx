import { useEffect, useMemo, useState } from "preact/hooks";
import { ApiError, get, onUnauthorized, post, type User } from "./api/client";
import { Link, message } from "./common";
import { PlayerBar } from "./PlayerBar";
import { Player } from "./player";
import { match, navigate, useLocation } from "./router";
import { Account } from "./screens/Account";
import { Admin } from "./screens/Admin";
import { Album } from "./screens/Album";
import { Artist } from "./screens/Artist";
import { DiscoverWeekly, Radio } from "./screens/Discover";
import { Library } from "./screens/Library";
import { Playlist } from "./screens/Playlist";
import { Playlists } from "./screens/Playlists";
import { Search } from "./screens/Search";
import { SignIn } from "./screens/SignIn";
import { SharedContext, type Shared } from "./state";

type Session = { state: "checking" } | { state: "out"; notice: string | null } | { state: "in"; user: User };

export function App() {
  const [session, setSession] = useState<Session>({ state: "checking" });
  const [status, setStatus] = useState("");
  const player = useMemo(() => new Player(), []);
  const location = useLocation();

  // Who is signed in: the cookie is HttpOnly, so the page asks the edge.
  useEffect(() => {
    get<User>("/v1/me").then(
      (user) => setSession({ state: "in", user }),
      (err) =>
        setSession({
          state: "out",
          notice: err instanceof ApiError && err.status === 401 ? null : message(err),
        }),
    );
  }, []);

  // Any 401 (session expired, signed out elsewhere, banned) returns to sign-in with a reason.
  useEffect(
    () =>
      onUnauthorized((err) => {
        player.signedIn(null);
        setSession({
          state: "out",
          notice: err.message && err.message !== "Unauthorized" ? `Signed out: ${err.message}` : "Your session has ended. Sign in again.",
        });
      }),
    [],
  );

  useEffect(() => {
    player.signedIn(session.state === "in" ? { id: session.user.id, product: session.user.product } : null);
  }, [session]);

  // A message belongs to the screen it was said on.
  useEffect(() => setStatus(""), [location.path]);

  if (session.state === "checking") return <p aria-busy="true">Loading…</p>;
  if (session.state === "out")
    return <SignIn notice={session.notice} onSignedIn={(user) => setSession({ state: "in", user })} />;

  const shared: Shared = {
    user: session.user,
    player,
    isAdmin: (session.user.roles ?? []).includes("ROLE_ADMIN"),
    notify: setStatus,
    refreshUser: async () => setSession({ state: "in", user: await get<User>("/v1/me") }),
    endSession: (notice) => {
      player.signedIn(null);
      setSession({ state: "out", notice });
    },
  };

  async function signOut() {
    try {
      await post("/api/auth/logout");
    } catch {
      // signed out either way: the cookie is cleared or already invalid
    }
    player.signedIn(null);
    setSession({ state: "out", notice: "You signed out." });
  }

  return (
    <SharedContext.Provider value={shared}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <div class="layout">
        <nav aria-label="Main">
          <p class="brand">Spotify Mesh</p>
          <ul>
            <li>
              <Link to="/search">Search</Link>
            </li>
            <li>
              <Link to="/library">Your library</Link>
            </li>
            <li>
              <Link to="/playlists">Playlists</Link>
            </li>
            <li>
              <Link to="/discover">Discover Weekly</Link>
            </li>
            <li>
              <Link to="/account">Account</Link>
            </li>
            {shared.isAdmin && (
              <li>
                <Link to="/admin">Admin</Link>
              </li>
            )}
          </ul>
          <p class="who">
            {session.user.display_name} · {session.user.product}
          </p>
          <button type="button" onClick={() => void signOut()}>
            Sign out
          </button>
        </nav>
        <main id="main" tabIndex={-1}>
          <p class="status" role="status" aria-live="polite">
            {status}
          </p>
          <Screen path={location.path} query={location.query} isAdmin={shared.isAdmin} />
        </main>
      </div>
      <PlayerBar player={player} />
    </SharedContext.Provider>
  );
}

function Screen(props: { path: string; query: URLSearchParams; isAdmin: boolean }) {
  const { path, query } = props;
  let params: Record<string, string> | null;
  if ((params = match("/album/:id", path))) return <Album id={params.id} />;
  if ((params = match("/artist/:id", path))) return <Artist id={params.id} />;
  if ((params = match("/playlist/:id", path))) return <Playlist id={params.id} />;
  if (path === "/library") return <Library />;
  if (path === "/playlists") return <Playlists />;
  if (path === "/discover") return <DiscoverWeekly />;
  if (path === "/radio") return <Radio track={query.get("track") ?? undefined} artist={query.get("artist") ?? undefined} />;
  if (path === "/account") return <Account />;
  if (path === "/admin" && props.isAdmin) return <Admin />;
  if (path === "/" || path === "/search") return <Search initial={query.get("q") ?? ""} />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        Nothing here. <button type="button" class="link" onClick={() => navigate("/search")}>Go to search</button>
      </p>
    </section>
  );
}
