import { useState } from "preact/hooks";
import { post, newKey, type User } from "../api/client";
import { message } from "../common";

/** Sign in, or create an account; the edge answers with the HttpOnly session cookie. */
export function SignIn(props: { notice: string | null; onSignedIn: (user: User) => void }) {
  const [mode, setMode] = useState<"signin" | "register">("signin");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // One key per registration attempt: a retried submit creates the account once.
  const [registerKey] = useState(newKey);

  async function submit(event: Event) {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const email = String(form.get("email") ?? "");
    const password = String(form.get("password") ?? "");
    setBusy(true);
    setError(null);
    try {
      if (mode === "register") {
        await post("/api/auth/register", {
          email,
          password,
          display_name: String(form.get("display_name") ?? ""),
          request_id: registerKey,
        });
      }
      const login = await post<{ user?: User }>("/api/auth/login", { email, password });
      if (!login.user) throw new Error("no user in the login answer");
      props.onSignedIn(login.user);
    } catch (err) {
      setError(message(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main class="signin" id="main">
      <h1>Spotify Mesh</h1>
      {props.notice && (
        <p class="notice" role="status">
          {props.notice}
        </p>
      )}
      <form onSubmit={submit} aria-label={mode === "signin" ? "Sign in" : "Create an account"}>
        <h2>{mode === "signin" ? "Sign in" : "Create an account"}</h2>
        <label>
          Email
          <input name="email" type="email" autocomplete="username" required />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete={mode === "signin" ? "current-password" : "new-password"}
            minLength={mode === "register" ? 8 : undefined}
            required
          />
        </label>
        {mode === "register" && (
          <label>
            Display name
            <input name="display_name" autocomplete="nickname" required />
          </label>
        )}
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {mode === "signin" ? "Sign in" : "Create account"}
        </button>
      </form>
      <p>
        {mode === "signin" ? "No account yet? " : "Already have one? "}
        <button type="button" class="link" onClick={() => setMode(mode === "signin" ? "register" : "signin")}>
          {mode === "signin" ? "Create an account" : "Sign in"}
        </button>
      </p>
    </main>
  );
}
