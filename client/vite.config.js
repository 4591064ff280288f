// Vite build of the browser client: two pages (the app and the minimal RTVI page), everything
// bundled locally (no CDN at run time), relative asset paths so the token server can serve
// client/dist at any path. `npm run build` first generates the 3D head GLB into public/.
import { resolve } from "node:path";
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    chunkSizeWarningLimit: 1200,
    rolldownOptions: {
      input: {
        main: resolve(import.meta.dirname, "index.html"),
        minimal: resolve(import.meta.dirname, "rtvi-minimal.html"),
      },
    },
  },
  server: { host: "127.0.0.1" },
});
