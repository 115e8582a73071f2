import { defineConfig } from "vite";

// Built into the Python package: the plugin serves ../static at /dashboard.
export default defineConfig({
  base: "/dashboard/",
  build: {
    outDir: "../static",
    emptyOutDir: true,
    assetsDir: "assets",
    chunkSizeWarningLimit: 2000,
  },
});
