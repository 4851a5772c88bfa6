/**
 * Delegated Routing V1 HTTP interop: our client against boxo's server (`routing/http/server`,
 * boxo v0.43, the one someguy and kubo serve) in a separate process
 * (spec-tests/interop/go-delegated/, built on first use into the os tmpdir). Skipped without Go
 * (as the other go interop tests); with `REQUIRE_GO_INTEROP=1` a missing Go fails.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer, Result } from "effect"
import * as ChildProcess from "node:child_process"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as DelegatedRouting from "../../src/protocols/delegated-routing/DelegatedRouting.ts"
import * as Kad from "../../src/protocols/kad/Kad.ts"
import { PeerRouting } from "../../src/routing/PeerRouting.ts"
import { findGo } from "./harness/goBuild.ts"

const DIR = fileURLToPath(new URL("./go-delegated/", import.meta.url))
const go = findGo()
if (go === undefined && process.env["REQUIRE_GO_INTEROP"] === "1") {
  throw new Error("REQUIRE_GO_INTEROP=1 but no Go: install Go 1.26 to run the go interop tests")
}

const build = (goBin: string): string => {
  const version = ChildProcess.execFileSync(goBin, ["version"], { encoding: "utf8" }).trim()
  const hash = Crypto.createHash("sha256").update(version)
  for (const f of ["main.go", "go.mod", "go.sum"]) hash.update(Fs.readFileSync(Path.join(DIR, f)))
  const dir = Path.join(Os.tmpdir(), "effect-libp2p-go-delegated", hash.digest("hex").slice(0, 16))
  const binary = Path.join(dir, "server")
  if (Fs.existsSync(binary)) return binary
  Fs.mkdirSync(dir, { recursive: true })
  const partial = `${binary}.${process.pid}.tmp`
  const run = ChildProcess.spawnSync(goBin, ["build", "-trimpath", "-buildvcs=false", "-o", partial, "."], {
    cwd: DIR,
    encoding: "utf8",
    env: { ...process.env, PATH: `${Path.dirname(goBin)}${Path.delimiter}${process.env["PATH"] ?? ""}` }
  })
  if (run.status !== 0) throw new Error(`go build of ${DIR} failed:\n${run.stderr}${run.stdout}`)
  Fs.renameSync(partial, binary)
  return binary
}

interface Started {
  readonly url: string
  readonly peers: ReadonlyArray<{ readonly id: string; readonly addrs: ReadonlyArray<string> }>
}

let proc: ChildProcess.ChildProcess | undefined
let started: Started | undefined

describe.skipIf(go === undefined)("Delegated Routing V1 interop: boxo server (go)", () => {
  beforeAll(async () => {
    const binary = build(go!)
    proc = ChildProcess.spawn(binary, [], { stdio: ["pipe", "pipe", "inherit"] })
    const lines = Readline.createInterface({ input: proc.stdout! })
    started = await new Promise<Started>((resolve, reject) => {
      lines.once("line", (line) => resolve(JSON.parse(line) as Started))
      proc!.once("exit", (code) => reject(new Error(`boxo server exited (${code})`)))
    })
  }, 600_000)

  afterAll(async () => {
    if (proc === undefined || proc.exitCode !== null) return
    const exited = new Promise((resolve) => proc!.once("exit", resolve))
    proc.stdin!.end()
    await exited
  })

  const client = (options: Partial<DelegatedRouting.DelegatedRoutingOptions> = {}) =>
    Effect.provide(DelegatedRouting.DelegatedRouting, DelegatedRouting.layerFetch({ url: started!.url, ...options }))

  const MH = Uint8Array.of(0x12, 0x20, ...Crypto.randomBytes(32))

  it.live("§Content Routing API: providers from boxo, as JSON and as NDJSON (§Streaming)", () =>
    Effect.gen(function*() {
      const want = started!.peers.map((p) => p.id).sort()
      for (const streaming of [false, true]) {
        const d = yield* client({ streaming })
        const recs = yield* d.findProviders(MH)
        expect(recs.map((r) => PeerId.toString(r.id)).sort()).toEqual(want)
        expect(recs.every((r) => r.addrs.length === 1 && r.protocols.includes("transport-bitswap"))).toBe(true)
      }
    }))

  it.live("§Peer Routing API: findPeers and PeerRouting.findPeer; an unknown peer is NotFound", () =>
    Effect.gen(function*() {
      const known = started!.peers[1]!
      const id = Result.getOrThrow(PeerId.fromString(known.id))
      const routing = yield* Effect.provide(
        PeerRouting,
        DelegatedRouting.layerPeerRouting.pipe(Layer.provide(DelegatedRouting.layerFetch({ url: started!.url })))
      )
      const info = yield* routing.findPeer(id)
      expect(info.addrs.map(Multiaddr.toString)).toEqual(known.addrs)
      const stranger = PeerId.fromPrivateKey(yield* Keys.generate("Ed25519"))
      const exit = yield* Effect.exit(routing.findPeer(stranger))
      expect(Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail" && exit.cause.reasons[0].error.reason)
        .toBe("NotFound")
    }))

  it.live("§DHT Routing API: closest peers of a key", () =>
    Effect.gen(function*() {
      const d = yield* client()
      expect((yield* d.getClosestPeers(MH)).length).toBe(3)
    }))

  it.live("§IPNS API: PUT our record, boxo validates and stores it, GET returns it verified; absent is NotFound", () =>
    Effect.gen(function*() {
      const key = yield* Keys.generate("Ed25519")
      const id = PeerId.fromPrivateKey(key)
      const d = yield* client()
      const absent = yield* Effect.exit(d.getIpns(id))
      expect(Exit.isFailure(absent) && absent.cause.reasons[0]?._tag === "Fail" && absent.cause.reasons[0].error.reason)
        .toBe("NotFound")
      const record = Result.getOrThrow(
        Kad.Ipns.create(key, new TextEncoder().encode("/ipfs/bafkqaaa"), {
          sequence: 7n,
          eolNanos: BigInt(Date.now() + 3_600_000) * 1_000_000n
        })
      )
      yield* d.putIpns(id, record)
      const got = yield* d.getIpns(id)
      expect(got.verified.sequence).toBe(7n)
      expect(new TextDecoder().decode(got.verified.value)).toBe("/ipfs/bafkqaaa")
    }))
})
