/**
 * Finding Go and building the go-libp2p test peer (spec-tests/interop/go) once per run, for the
 * vitest global setup (goSetup.ts) and bench/. Plain Node, synchronous: it runs before any test.
 *
 * The binary goes to `<os tmpdir>/effect-libp2p-go-peer/<hash>/go-peer`, where the hash covers
 * go.mod, go.sum, every .go file and `go version`: a run whose sources are unchanged reuses it
 * without invoking the compiler; otherwise `go build` runs with Go's own module and build caches
 * (GOMODCACHE, GOCACHE at their default locations), so only the first build on a machine
 * downloads and compiles go-libp2p. Nothing is written into the repository. `-buildvcs=false`:
 * the peer is built inside this repository's git worktree, and stamping VCS data fails where git
 * is missing or the checkout is unusual (CI).
 */
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

/** The go test peer's module directory. */
export const GO_DIR = fileURLToPath(new URL("../go/", import.meta.url))

/** Where Go is installed by default, for a PATH that lacks it (CI's shells). */
export const DEFAULT_GO = "/usr/local/go/bin/go"

const executable = (file: string): boolean => {
  try {
    Fs.accessSync(file, Fs.constants.X_OK)
    return Fs.statSync(file).isFile()
  } catch {
    return false
  }
}

/**
 * `$GO` when set (the only candidate then: `GO=/nonexistent` acts as "no Go"), else `go` on the
 * PATH, then /usr/local/go/bin/go; undefined when there is none.
 */
export const findGo = (env: NodeJS.ProcessEnv = process.env): string | undefined => {
  const explicit = env["GO"]
  if (explicit !== undefined && explicit !== "") return executable(explicit) ? explicit : undefined
  const onPath = (env["PATH"] ?? "").split(Path.delimiter).filter((d) => d !== "").map((d) => Path.join(d, "go"))
  return [...onPath, DEFAULT_GO].find(executable)
}

export interface GoPeerBuild {
  readonly binary: string
  readonly go: string
  /** `go version` output, e.g. "go version go1.26.8 linux/amd64". */
  readonly goVersion: string
  /** The go-libp2p version go.mod pins, e.g. "v0.52.0". */
  readonly libp2p: string
  /** false: the binary for these sources already existed. */
  readonly built: boolean
  readonly ms: number
}

const sourceHash = (goVersion: string): string => {
  const hash = Crypto.createHash("sha256").update(goVersion)
  const files = Fs.readdirSync(GO_DIR).filter((f) => f === "go.mod" || f === "go.sum" || f.endsWith(".go")).sort()
  for (const f of files) hash.update(f).update("\0").update(Fs.readFileSync(Path.join(GO_DIR, f)))
  return hash.digest("hex").slice(0, 16)
}

const pinnedLibp2p = (): string =>
  /github\.com\/libp2p\/go-libp2p (v\S+)/.exec(Fs.readFileSync(Path.join(GO_DIR, "go.mod"), "utf8"))?.[1] ?? "unknown"

/** Build the go peer (or reuse the binary of the same sources); throws with go's output when the build fails. */
export const buildGoPeer = (go: string): GoPeerBuild => {
  const t0 = performance.now()
  const goVersion = ChildProcess.execFileSync(go, ["version"], { encoding: "utf8" }).trim()
  const dir = Path.join(Os.tmpdir(), "effect-libp2p-go-peer", sourceHash(goVersion))
  const binary = Path.join(dir, "go-peer")
  const libp2p = pinnedLibp2p()
  if (executable(binary)) return { binary, go, goVersion, libp2p, built: false, ms: performance.now() - t0 }
  Fs.mkdirSync(dir, { recursive: true })
  const partial = `${binary}.${process.pid}.tmp`
  const run = ChildProcess.spawnSync(go, ["build", "-trimpath", "-buildvcs=false", "-o", partial, "."], {
    cwd: GO_DIR,
    encoding: "utf8",
    // the go directory of the go binary we found, first, so `go` finds its own toolchain
    env: { ...process.env, PATH: `${Path.dirname(go)}${Path.delimiter}${process.env["PATH"] ?? ""}` }
  })
  if (run.status !== 0) {
    throw new Error(`go build of ${GO_DIR} failed (${run.status ?? run.signal}):\n${run.stderr}${run.stdout}`)
  }
  Fs.renameSync(partial, binary) // atomic: a concurrent run sees the whole binary or none
  return { binary, go, goVersion, libp2p, built: true, ms: performance.now() - t0 }
}
