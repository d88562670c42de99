import { defineConfig, loadEnv } from "vite";

// Served by the edge under /app/ (media_svc's static root), beside the API on the same origin,
// so the HttpOnly session cookie needs no third-party cookie and no CORS.
export default defineConfig(({ mode }) => ({
  base: "/app/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
  server: {
    // `npx vite` against a running mesh: the API and media through its Envoy.
    proxy: Object.fromEntries(
      ["/v1", "/api", "/media"].map((p) => [p, loadEnv(mode, ".", "MESH_").MESH_URL ?? "http://127.0.0.1:8080"]),
    ),
  },
}));
