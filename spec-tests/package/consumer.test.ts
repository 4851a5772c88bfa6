/**
 * The package as a user installs it (issue 11 item 3): `npm pack` (which runs
 * `prepack`, the build), then the tarball is installed into a consumer project
 * in the system's temporary directory, outside this repository, next to
 * `effect` and the `node` npm package pinned to 24 (the machine's own Node may
 * be older than our `engines`). In that project:
 * - a plain ESM program (`consumer/main.mjs`) starts two nodes and pings one
 *   from the other;
 * - a TypeScript program (`consumer/main.ts`) is type-checked with `tsc
 *   --noEmit` against the shipped `.d.ts` (one `@ts-expect-error` line fails
 *   the check if the types were `any`), then run on that Node 24;
 * - the `effect-libp2p` bin runs from `node_modules/.bin`.
 *
 * Cache: installing `node` (a ~100 MB binary) and `effect` takes 30-40 s, so
 * a base project with them and our runtime dependencies is installed once per
 * set of versions into `$TMPDIR/effect-libp2p-consumer-base-<hash>` (made in a
 * scratch folder, then renamed into place, so concurrent runs never see half of
 * one) and each run hard-links its node_modules into a fresh consumer before
 * installing the tarball. Needs the npm registry (or a warm npm cache) for the
 * first run only.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Process from "../support/process.ts"

const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const FIXTURES = fileURLToPath(new URL("./consumer/", import.meta.url))
const pkg = JSON.parse(Fs.readFileSync(Path.join(ROOT, "package.json"), "utf8")) as {
  readonly name: string
  readonly dependencies: Record<string, string>
  readonly devDependencies: Record<string, string>
}
const NODE_VERSION = (JSON.parse(Fs.readFileSync(Path.join(ROOT, "node_modules/node/package.json"), "utf8")) as {
  readonly version: string
}).version
const NPM_FLAGS = ["--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"]

/** The consumer's package.json: effect (the version we test with) and node 24 as a devDependency. */
const manifest = (dependencies: Record<string, string>) => ({
  name: "effect-libp2p-consumer",
  private: true,
  type: "module",
  dependencies: { effect: pkg.devDependencies["effect"]!, ...dependencies },
  devDependencies: { node: NODE_VERSION },
  allowScripts: { node: true }
})

const sync = <A>(f: () => A) => Effect.sync(f)
const tempDir = (prefix: string) => sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), prefix)))
const removeDir = (dir: string) => sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
const scopedTempDir = (prefix: string) => Effect.acquireRelease(tempDir(prefix), removeDir)

/** Hard-link every file of `from` into `to` (symlinks copied as symlinks). */
const linkTree = (from: string, to: string): void => {
  Fs.mkdirSync(to, { recursive: true })
  for (const entry of Fs.readdirSync(from, { withFileTypes: true })) {
    const src = Path.join(from, entry.name)
    const dst = Path.join(to, entry.name)
    if (entry.isDirectory()) linkTree(src, dst)
    else if (entry.isSymbolicLink()) Fs.symlinkSync(Fs.readlinkSync(src), dst)
    else Fs.linkSync(src, dst)
  }
}

/** The installed base project for these versions, made once. */
const baseProject = Effect.gen(function*() {
  const deps = Object.fromEntries(Object.entries(pkg.dependencies).sort())
  const key = Crypto.createHash("sha256").update(JSON.stringify(manifest(deps))).digest("hex").slice(0, 16)
  const base = Path.join(Os.tmpdir(), `effect-libp2p-consumer-base-${key}`)
  if (Fs.existsSync(Path.join(base, "package-lock.json"))) return base
  const scratch = yield* tempDir("effect-libp2p-consumer-scratch-")
  yield* sync(() => Fs.writeFileSync(Path.join(scratch, "package.json"), JSON.stringify(manifest(deps), null, 2)))
  yield* Process.runOk("npm", ["install", ...NPM_FLAGS], { cwd: scratch, timeout: "300 seconds" })
  // another run may have finished first: then keep its copy
  yield* sync(() => {
    try {
      Fs.renameSync(scratch, base)
    } catch {
      Fs.rmSync(scratch, { recursive: true, force: true })
    }
  })
  return base
})

describe("the packed package, installed into a consumer project", () => {
  it.live(
    "npm pack → npm install → an ESM program and a type-checked TS program each ping between two nodes",
    () =>
      Effect.gen(function*() {
        const packDir = yield* scopedTempDir("effect-libp2p-pack-")
        yield* Process.runOk("npm", ["pack", "--pack-destination", packDir, "--loglevel=error"], {
          cwd: ROOT,
          timeout: "300 seconds"
        })
        const tarball = Fs.readdirSync(packDir).find((f) => f.endsWith(".tgz"))
        expect(tarball).toBe(`${pkg.name}-0.1.0.tgz`)

        const base = yield* baseProject
        const dir = yield* scopedTempDir("effect-libp2p-consumer-")
        yield* sync(() => {
          linkTree(Path.join(base, "node_modules"), Path.join(dir, "node_modules"))
          Fs.copyFileSync(Path.join(base, "package-lock.json"), Path.join(dir, "package-lock.json"))
          Fs.writeFileSync(
            Path.join(dir, "package.json"),
            JSON.stringify(manifest({ [pkg.name]: `file:${Path.join(packDir, tarball!)}` }), null, 2)
          )
          for (const f of ["main.mjs", "main.ts", "tsconfig.json"]) {
            Fs.copyFileSync(Path.join(FIXTURES, f), Path.join(dir, f))
          }
        })
        yield* Process.runOk("npm", ["install", ...NPM_FLAGS], { cwd: dir, timeout: "300 seconds" })

        // what shipped: the build, no tests, no benches
        const installed = Path.join(dir, "node_modules", pkg.name)
        expect(Fs.existsSync(Path.join(installed, "dist/src/index.js"))).toBe(true)
        expect(Fs.existsSync(Path.join(installed, "dist/src/index.d.ts"))).toBe(true)
        expect(Fs.existsSync(Path.join(installed, "dist/layers/index.js"))).toBe(true)
        for (const absent of ["spec-tests", "property-tests", "bench", "examples"]) {
          expect(Fs.existsSync(Path.join(installed, absent))).toBe(false)
        }

        const node = Path.join(dir, "node_modules", ".bin", "node")
        const version = yield* Process.runOk(node, ["--version"], { cwd: dir })
        expect(version.stdout).toMatch(/^v24\./)

        const mjs = yield* Process.runOk(node, ["main.mjs"], { cwd: dir, timeout: "60 seconds" })
        expect(mjs.stdout).toMatch(/^mjs: pinged \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+: 2 round trips$/m)

        yield* Process.runOk(Path.join(ROOT, "node_modules", ".bin", "tsc"), ["--noEmit", "-p", "tsconfig.json"], {
          cwd: dir,
          timeout: "120 seconds"
        })
        const ts = yield* Process.runOk(node, ["main.ts"], { cwd: dir, timeout: "60 seconds" })
        expect(ts.stdout).toMatch(/^ts: pinged \/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW\w+: 2 round trips$/m)

        // the bin, as `npx effect-libp2p` finds it (Node 24 first on PATH)
        const bin = Path.join(dir, "node_modules", ".bin")
        const help = yield* Process.runOk(Path.join(bin, pkg.name), ["--help"], {
          cwd: dir,
          env: { PATH: `${bin}${Path.delimiter}${process.env["PATH"] ?? ""}` }
        })
        expect(help.stdout).toContain("effect-libp2p <subcommand>")
      }).pipe(Effect.scoped),
    { timeout: 600_000 }
  )
})
