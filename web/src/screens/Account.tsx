import { useEffect, useState } from "preact/hooks";
import { del, get, newKey, post, type Schemas } from "../api/client";
import { message } from "../common";
import { useShared } from "../state";

type DataExport = Schemas["spotify.auth.v1.DataExport"];

const POLL_MS = 1000;

/** The listener's own account: a copy of everything stored about them, and its deletion. */
export function Account() {
  const { user } = useShared();
  return (
    <section aria-labelledby="account-title">
      <h1 id="account-title">Your account</h1>
      <p>
        {user.display_name} · {user.email} · {user.product}
      </p>
      <YourData />
      <DeleteAccount />
    </section>
  );
}

function YourData() {
  const { notify } = useShared();
  const [exported, setExported] = useState<DataExport | null>(null);

  // Follow an export until the service has assembled it (a few seconds: every service answers).
  useEffect(() => {
    if (!exported || exported.state !== "STATE_PENDING") return;
    const timer = window.setTimeout(async () => {
      try {
        setExported(await get<DataExport>(`/api/account/data-export/${exported.id}`));
      } catch (err) {
        notify(message(err));
      }
    }, POLL_MS);
    return () => window.clearTimeout(timer);
  }, [exported]);

  async function ask() {
    try {
      setExported(await post<DataExport>("/api/account/data-export", { request_id: newKey() }));
    } catch (err) {
      notify(message(err));
    }
  }

  const pending = exported?.state === "STATE_PENDING";
  return (
    <section aria-labelledby="data-title">
      <h2 id="data-title">Your data</h2>
      <p>One zip of everything the service stores about you, with a README saying what each file holds.</p>
      <button type="button" onClick={() => void ask()} disabled={pending} aria-busy={pending}>
        {pending ? "Preparing your data…" : "Request your data"}
      </button>
      {exported?.state === "STATE_DONE" && exported.download_url && (
        <p>
          <a href={exported.download_url} download>
            Download your data ({Math.ceil(Number(exported.size_bytes ?? 0) / 1024)} KB)
          </a>{" "}
          <span class="sub">The link works for an hour.</span>
        </p>
      )}
      {exported?.state === "STATE_FAILED" && <p role="alert">It could not be prepared: {exported.error}</p>}
    </section>
  );
}

function DeleteAccount() {
  const { notify, endSession } = useShared();
  const [busy, setBusy] = useState(false);

  async function remove(form: HTMLFormElement) {
    const password = String(new FormData(form).get("password") ?? "");
    setBusy(true);
    try {
      await del("/api/account", { password });
      endSession("Your account was deleted.");
    } catch (err) {
      notify(message(err));
      setBusy(false);
    }
  }

  return (
    <section aria-labelledby="delete-title">
      <h2 id="delete-title">Delete your account</h2>
      <p>
        Your playlists, library, history and downloads go, and you are signed out everywhere. There is no undo.
      </p>
      <form
        class="stacked"
        aria-label="Delete your account"
        onSubmit={(e) => {
          e.preventDefault();
          void remove(e.currentTarget as HTMLFormElement);
        }}
      >
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" required />
        </label>
        <label class="check">
          <input name="understood" type="checkbox" required />I understand this cannot be undone
        </label>
        <button type="submit" class="danger" disabled={busy}>
          Delete my account
        </button>
      </form>
    </section>
  );
}
