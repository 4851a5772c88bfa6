/**
 * vitest global setup: find Go and build the go-libp2p test peer once per run (goBuild.ts), and
 * hand its path to the go interop tests (`inject("goPeer")`, null when there is no Go).
 *
 * Without Go the go interop tests are skipped and this says so once; with
 * `REQUIRE_GO_INTEROP=1` (set by .ci/run) a missing Go, or a failing build, fails the run.
 */
import type { TestProject } from "vitest/node"
import { buildGoPeer, DEFAULT_GO, findGo, type GoPeerBuild } from "./goBuild.ts"

declare module "vitest" {
  export interface ProvidedContext {
    goPeer: GoPeerBuild | null
  }
}

export default function setup(project: TestProject) {
  const required = process.env["REQUIRE_GO_INTEROP"] === "1"
  const go = findGo()
  if (go === undefined) {
    const why = process.env["GO"]
      ? `$GO (${process.env["GO"]}) is not an executable`
      : `no \`go\` on the PATH or at ${DEFAULT_GO}`
    if (required) throw new Error(`REQUIRE_GO_INTEROP=1 but ${why}: install Go 1.26 to run the go interop tests`)
    process.stderr.write(`[go interop] SKIPPED: ${why} (spec-tests/interop/go-*.test.ts need Go 1.26)\n`)
    project.provide("goPeer", null)
    return
  }
  const build = buildGoPeer(go)
  if (build.built) {
    process.stderr.write(
      `[go interop] built the go peer with ${build.goVersion} in ${(build.ms / 1000).toFixed(1)} s\n`
    )
  }
  project.provide("goPeer", build)
}
