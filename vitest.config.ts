import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["spec-tests/**/*.test.ts", "property-tests/**/*.test.ts", "src/**/*.test.ts", "layers/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // builds the go-libp2p test peer once per run (or says once that go interop is skipped)
    globalSetup: ["spec-tests/interop/harness/goSetup.ts"],
    reporters: ["default"],
    // the conformance report links each claiming test to its line (conformance/report.ts)
    includeTaskLocation: true
  }
})
