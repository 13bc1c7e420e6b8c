import { defineConfig } from "vitest/config";

export default defineConfig({
  clearScreen: false,
  build: { outDir: "dist", target: "es2022", emptyOutDir: true },
  test: { environment: "jsdom", globals: true },
});
