import { defineConfig } from "vitest/config";
import react from "@vitejs/plugin-react";

// base "./": every URL in index.html is relative, so the same bundle works under any plugin prefix.
export default defineConfig({
  base: "./",
  plugins: [react()],
  build: {
    outDir: "../saleor_flows/dashboard/static",
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
    sourcemap: false,
  },
  test: { include: ["src/**/*.test.ts"], environment: "node" },
});
