/**
 * `node --dht` and the one-shot `dht …` commands (ARCHITECTURE.md §7, docs/CLI.md),
 * each node and command in its own process: two `node --dht server` nodes (the
 * second bootstraps from the first), then `dht find-peer`, `dht put`/`dht get`
 * of a `/pk/` record, `dht provide`/`dht find-providers` of a CID, through
 * temporary client-mode nodes; a `node --dht client` does not advertise the
 * protocol; nothing found is exit 1 with `_tag` `NotFound`, a bad key a usage
 * error (exit 2).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Keys from "../../src/core/Keys.ts"
import * as Multibase from "../../src/core/Multibase.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { type Cli, runCli, spawnCli, stop } from "./support.ts"

const NODE = ["node", "--dht", "server", "--ephemeral", "--listen", "/ip4/127.0.0.1/tcp/0", "--json"]

const listening = (cli: Cli) =>
  Effect.map(cli.awaitLine((l) => l["event"] === "listening"), (l) => ({
    peerId: l["peerId"] as string,
    addrs: l["addrs"] as Array<string>
  }))

/** A CIDv1 (raw, sha2-256) of random bytes, base32. */
const randomCid = () =>
  Multibase.encode(
    "base32",
    Uint8Array.from([0x01, 0x55, 0x12, 0x20, ...Crypto.createHash("sha256").update(Crypto.randomBytes(32)).digest()])
  )

/**
 * A new peer whose id is a SHA-256 multihash (an ECDSA key: its public key does
 * not fit in the id, as an Ed25519 or secp256k1 key does, so a `/pk/` record is
 * only found if it was put).
 */
const newPeer = Effect.map(Keys.generate("ECDSA"), (key) => ({ key, id: PeerId.toString(PeerId.fromPrivateKey(key)) }))

type Run = Effect.Success<ReturnType<typeof runCli>>

/** The run succeeded and printed only JSON lines. */
const ok = (run: Run) => {
  expect(run.exit, run.stderr).toEqual({ code: 0, signal: null })
  expect(run.bad).toEqual([])
  return run.lines
}

/** The run failed (exit 1) with one error line whose `_tag` is `tag`. */
const failedWith = (run: Run, tag: string) => {
  expect(run.exit, run.stderr).toEqual({ code: 1, signal: null })
  expect(run.bad).toEqual([])
  expect(run.lines).toHaveLength(1)
  expect(run.lines[0]).toMatchObject({ event: "error", error: { _tag: tag } })
}

describe("CLI dht (ARCHITECTURE §7, docs/CLI.md; kad-dht spec)", () => {
  it.live(
    "§7 node --dht server and dht find-peer | put/get /pk/ | provide/find-providers | NotFound exit 1",
    () =>
      Effect.gen(function*() {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-libp2p-dht-"))),
          (d) => Effect.sync(() => Fs.rmSync(d, { recursive: true, force: true }))
        )
        const a = yield* spawnCli(NODE)
        const first = yield* listening(a)
        const b = yield* spawnCli([...NODE, "--bootstrap", first.addrs[0]!])
        const second = yield* listening(b)
        // b identified a as a DHT server (and a learnt b from b's inbound connection)
        const identified = yield* b.awaitLine((l) => l["event"] === "peer:identify" && l["peerId"] === first.peerId)
        expect(identified["protocols"]).toContain("/ipfs/kad/1.0.0")
        yield* a.awaitLine((l) => l["event"] === "peer:identify" && l["peerId"] === second.peerId)
        const via = ["--bootstrap", first.addrs[0]!, "--json"]

        // spec §Peer routing: b is found through a
        const found = ok(yield* runCli(["dht", "find-peer", second.peerId, ...via]))
        expect(found).toEqual([{ event: "peer", peerId: second.peerId, addrs: [second.addrs[0]!.split("/p2p/")[0]] }])

        // spec §Value routing: a /pk/ record of a key the nodes have never seen (not derivable from its id)
        const owner = yield* newPeer
        const value = Keys.publicKeyToProtobuf(owner.key.publicKey)
        const file = Path.join(dir, "pk.bin")
        Fs.writeFileSync(file, value)
        const put = ok(yield* runCli(["dht", "put", `/pk/${owner.id}`, file, ...via]))
        expect(put).toHaveLength(1)
        expect(put[0]).toMatchObject({ event: "put", key: `/pk/${owner.id}` })
        expect(put[0]!["peers"]).toBeGreaterThanOrEqual(1)
        const got = ok(yield* runCli(["dht", "get", `/pk/${owner.id}`, ...via]))
        expect(got).toEqual([
          { event: "value", key: `/pk/${owner.id}`, valueBase64: Buffer.from(value).toString("base64") }
        ])

        // spec §Content routing: provided as the --identity peer, found by another client
        const provider = yield* newPeer
        const identity = Path.join(dir, "provider.key")
        Fs.writeFileSync(identity, Keys.privateKeyToProtobuf(provider.key))
        const cid = randomCid()
        const provided = ok(yield* runCli(["dht", "provide", cid, "--identity", identity, ...via]))
        expect(provided).toHaveLength(1)
        expect(provided[0]).toMatchObject({ event: "provide", cid, peerId: provider.id })
        expect(provided[0]!["peers"]).toBeGreaterThanOrEqual(1)
        const providers = ok(yield* runCli(["dht", "find-providers", cid, "--count", "1", ...via]))
        expect(providers).toHaveLength(1)
        expect(providers[0]).toMatchObject({ event: "provider", cid, peerId: provider.id })

        // nothing found: exit 1, the reason as _tag
        failedWith(yield* runCli(["dht", "get", `/pk/${(yield* newPeer).id}`, ...via]), "NotFound")
        failedWith(yield* runCli(["dht", "find-providers", randomCid(), ...via]), "NotFound")
        // --lan speaks /ipfs/lan/kad/1.0.0, which these nodes do not: no DHT peer to ask
        failedWith(yield* runCli(["dht", "find-peer", second.peerId, "--lan", ...via]), "NoPeers")

        // node --dht client: asks only, so it does not advertise the protocol
        const c = yield* spawnCli([
          "node",
          "--dht",
          "client",
          "--ephemeral",
          "--listen",
          "/ip4/127.0.0.1/tcp/0",
          "--bootstrap",
          first.addrs[0]!,
          "--json"
        ])
        const third = yield* listening(c)
        const seen = yield* a.awaitLine((l) => l["event"] === "peer:identify" && l["peerId"] === third.peerId)
        expect(seen["protocols"]).not.toContain("/ipfs/kad/1.0.0")
        expect(yield* stop(c)).toEqual({ code: 0, signal: null })
        expect(c.bad).toEqual([])
        expect(yield* stop(b)).toEqual({ code: 0, signal: null })
        expect(yield* stop(a)).toEqual({ code: 0, signal: null })
        expect(a.bad).toEqual([])
        expect(b.bad).toEqual([])
      }),
    180_000
  )

  it.live("§7 dht usage errors: a bad key or CID is exit 2 with one UsageError line", () =>
    Effect.gen(function*() {
      for (
        const args of [
          ["dht", "get", "/pk/not-a-peer-id"],
          ["dht", "get", "pk-without-slashes"],
          ["dht", "put", "/pk/a/b", "file"],
          ["dht", "find-providers", "not-a-cid"]
        ]
      ) {
        const run = yield* runCli([...args, "--bootstrap", "/ip4/127.0.0.1/tcp/1", "--json"])
        expect(run.exit, run.stderr).toEqual({ code: 2, signal: null })
        expect(run.lines).toEqual([
          { event: "error", error: { _tag: "UsageError", message: expect.stringMatching(/^bad (key|CID)/) } }
        ])
        expect(run.stderr).toMatch(/USAGE/)
      }
    }), 60_000)
})
