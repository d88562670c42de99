import { useState } from "preact/hooks";
import { get, newKey, post, request, type AuditEvent, type User } from "../api/client";
import { Status, message, useLoad } from "../common";
import { useShared } from "../state";

const ROLES = ["ROLE_PREMIUM", "ROLE_ARTIST", "ROLE_ADMIN"] as const;

/** Users (find, ban, unban, roles) and the audit log: for admins only (the edge enforces it too). */
export function Admin() {
  const { notify } = useShared();
  const [query, setQuery] = useState("");
  const users = useLoad(
    (signal) => get<{ users: User[] }>("/api/admin/users", { query, limit: 25 }, signal),
    [query],
  );
  const audit = useLoad(
    (signal) => get<{ events: AuditEvent[] }>("/api/admin/audit-logs", { limit: 25 }, signal),
    [],
  );

  async function act(action: () => Promise<unknown>, done: string) {
    try {
      await action();
      notify(done);
    } catch (err) {
      notify(message(err));
    }
    users.reload();
    audit.reload();
  }

  return (
    <section aria-labelledby="admin-title">
      <h1 id="admin-title">Administration</h1>
      <h2>Users</h2>
      <form
        class="inline"
        aria-label="Find users"
        onSubmit={(e) => {
          e.preventDefault();
          setQuery(String(new FormData(e.currentTarget as HTMLFormElement).get("q") ?? ""));
        }}
      >
        <label>
          <span class="visually-hidden">Email or name</span>
          <input name="q" type="search" placeholder="Email or name" />
        </label>
        <button type="submit">Find</button>
      </form>
      <Status loaded={users}>
        {({ users: list }) => (
          <table class="admin">
            <caption class="visually-hidden">Users</caption>
            <thead>
              <tr>
                <th scope="col">User</th>
                <th scope="col">Roles</th>
                <th scope="col">State</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {list.map((u) => (
                <tr key={u.id}>
                  <td>
                    {u.display_name}
                    <span class="sub">{u.email}</span>
                    <span class="sub mono">{u.id}</span>
                  </td>
                  <td>
                    {ROLES.map((role) => (
                      <label key={role} class="check">
                        <input
                          type="checkbox"
                          checked={(u.roles ?? []).includes(role)}
                          onChange={(e) => {
                            const on = (e.target as HTMLInputElement).checked;
                            const roles = (u.roles ?? []).filter((r) => r !== role).concat(on ? [role] : []);
                            void act(
                              () =>
                                request("PUT", `/api/admin/users/${u.id}/roles`, { body: { roles, artist_ids: u.artist_ids ?? [] } }),
                              `Roles of ${u.display_name} updated.`,
                            );
                          }}
                        />
                        {role.replace("ROLE_", "").toLowerCase()}
                      </label>
                    ))}
                  </td>
                  <td>{u.banned ? `banned${u.ban_reason ? `: ${u.ban_reason}` : ""}` : "active"}</td>
                  <td>
                    {u.banned ? (
                      <button
                        type="button"
                        onClick={() => void act(() => post(`/api/admin/users/${u.id}/unban`, {}, newKey()), `${u.display_name} unbanned.`)}
                      >
                        Unban {u.display_name}
                      </button>
                    ) : (
                      <button
                        type="button"
                        class="danger"
                        onClick={() => {
                          const reason = window.prompt(`Why ban ${u.display_name}?`, "terms of service");
                          if (reason !== null)
                            void act(
                              () => post(`/api/admin/users/${u.id}/ban`, { reason, request_id: newKey() }),
                              `${u.display_name} banned.`,
                            );
                        }}
                      >
                        Ban {u.display_name}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Status>
      <h2>Audit log</h2>
      <Status loaded={audit}>
        {({ events }) => (
          <table class="admin">
            <caption class="visually-hidden">Latest audited actions</caption>
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Action</th>
                <th scope="col">Actor</th>
                <th scope="col">Resource</th>
                <th scope="col">Outcome</th>
              </tr>
            </thead>
            <tbody>
              {events.map((e) => (
                <tr key={e.id}>
                  <td>{e.occurred_at ? new Date(e.occurred_at).toLocaleString() : ""}</td>
                  <td>{e.action}</td>
                  <td class="mono">{e.actor_id}</td>
                  <td class="mono">
                    {e.resource_type} {e.resource_id}
                  </td>
                  <td>{e.success ? "ok" : "refused"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Status>
    </section>
  );
}
