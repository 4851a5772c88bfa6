/**
 * Our daemon and a js-libp2p node behind `@libp2p/daemon-server` (both separate processes),
 * driven by the same `@libp2p/daemon-client` code and connected to each other: connect,
 * echo over a stream each way (length-prefixed, as the clients do), Kad-DHT peer routing,
 * content routing and values both ways, pubsub with gossipsub and with floodsub both ways.
 * A small matrix of key types (ed25519, rsa, secp256k1 through `--identity`), security
 * (noise, tls, plaintext) and muxers (yamux, mplex), not the full cross product.
 */
import { describe, expect, it } from "@effect/vitest"
import { publicKeyToProtobuf } from "@libp2p/crypto/keys"
import type { DaemonClient } from "@libp2p/daemon-client"
import { Request } from "@libp2p/daemon-protocol"
import { peerIdFromString } from "@libp2p/peer-id"
import { multiaddr } from "@multiformats/multiaddr"
import { type Duration, Effect, Schedule } from "effect"
import { CID } from "multiformats/cid"
import { sha256 } from "multiformats/hashes/sha2"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { call, type Daemon, echoHandler, echoOver, jsDaemon, ourDaemon } from "./support.ts"

const ECHO = "/echo/1.0.0"
const text = (s: string) => new TextEncoder().encode(s)
const bare = (a: string) => a.replace(/\/p2p\/.*$/, "")

/** A temporary `--identity` file holding a new key of `type`. */
const identityFile = (type: Keys.KeyType) =>
  Effect.gen(function*() {
    const key = yield* Keys.generate(type)
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "daemon-id-"))
    yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
    const file = Path.join(dir, "identity.key")
    Fs.writeFileSync(file, Keys.privateKeyToProtobuf(key), { mode: 0o600 })
    return { file, peerId: PeerId.toString(PeerId.fromPrivateKey(key)) }
  })

const connect = (from: Daemon, to: Daemon) =>
  call(() => from.client.connect(peerIdFromString(to.peerId), to.addrs.map((a) => multiaddr(bare(a)))))

/** Echo handlers on both, then a stream each way. */
const echoBothWays = (ours: Daemon, js: Daemon) =>
  Effect.gen(function*() {
    yield* call(() => js.client.registerStreamHandler(ECHO, echoHandler))
    yield* call(() => ours.client.registerStreamHandler(ECHO, echoHandler))
    expect(yield* call(() => echoOver(ours.client, peerIdFromString(js.peerId), "ours → js"))).toBe("ours → js")
    expect(yield* call(() => echoOver(js.client, peerIdFromString(ours.peerId), "js → ours"))).toBe("js → ours")
  })

const until = <A, E>(effect: Effect.Effect<A, E>, timeout: Duration.Input = "30 seconds") =>
  effect.pipe(Effect.retry(Schedule.spaced("300 millis")), Effect.timeout(timeout))

/** `from` publishes on `topic` (again, until the mesh carries it) and `to`'s subscription gets it. */
const deliver = (from: DaemonClient, to: DaemonClient, topic: string, body: string) =>
  Effect.gen(function*() {
    const sub = yield* call(() => to.pubsub.subscribe(topic))
    const received = call(async () => {
      for await (const m of sub.messages()) {
        if (new TextDecoder().decode(m.data) === body) return m
      }
      throw new Error("subscription ended")
    })
    const publishing = Effect.forever(
      Effect.andThen(call(() => from.pubsub.publish(topic, text(body))), Effect.sleep("500 millis"))
    )
    const msg = yield* Effect.raceFirst(received, Effect.andThen(publishing, Effect.never)).pipe(
      Effect.timeout("30 seconds")
    )
    yield* call(() => sub.cancel())
    return msg
  })

/** Both subscribe to `topic` and see each other there, then a message each way. */
const pubsubBothWays = (ours: Daemon, js: Daemon, topic: string) =>
  Effect.gen(function*() {
    const subOurs = yield* call(() => ours.client.pubsub.subscribe(topic))
    const subJs = yield* call(() => js.client.pubsub.subscribe(topic))
    yield* until(call(async () => {
      const a = (await ours.client.pubsub.getSubscribers(topic)).map(String)
      const b = (await js.client.pubsub.getSubscribers(topic)).map(String)
      if (!a.includes(js.peerId) || !b.includes(ours.peerId)) throw new Error(`not yet: ${a} / ${b}`)
    }))
    const toJs = yield* deliver(ours.client, js.client, topic, "from ours")
    expect(Buffer.from(toJs.from!).toString("hex")).toBe(
      Buffer.from(peerIdFromString(ours.peerId).toMultihash().bytes).toString("hex")
    )
    const toOurs = yield* deliver(js.client, ours.client, topic, "from js")
    expect(toOurs.topicIDs).toEqual([topic])
    yield* call(() => subOurs.cancel())
    yield* call(() => subJs.cancel())
  })

describe("daemon interop: our daemon ↔ js-libp2p behind @libp2p/daemon-server", () => {
  it.live(
    "CONTROL.md/DHT.md/PUBSUB.md ed25519, noise, yamux: connect, echo each way, DHT routing and values both ways, gossipsub",
    () =>
      Effect.gen(function*() {
        const [ours, js] = yield* Effect.all([
          ourDaemon({ args: ["--dht", "server", "--pubsub", "gossipsub"] }),
          jsDaemon({ dht: "server", pubsub: "gossipsub" })
        ], { concurrency: 2 })
        yield* connect(ours, js)
        expect((yield* call(() => ours.client.listPeers())).map(String)).toEqual([js.peerId])
        expect((yield* call(() => js.client.listPeers())).map(String)).toContain(ours.peerId)
        yield* echoBothWays(ours, js)

        // peer routing both ways: each finds the other's advertised listen address
        const byOurs = yield* until(call(() => ours.client.dht.findPeer(peerIdFromString(js.peerId))))
        expect(byOurs.multiaddrs.map(String)).toContain(bare(js.addrs[0]!))
        const byJs = yield* until(call(() => js.client.dht.findPeer(peerIdFromString(ours.peerId))))
        expect(byJs.multiaddrs.map(String)).toContain(bare(ours.addrs[0]!))

        // content routing both ways
        const cid = (s: string) => Effect.promise(async () => CID.createV1(0x55, await sha256.digest(text(s))))
        const c1 = yield* cid("provided by ours")
        yield* until(call(() => ours.client.dht.provide(c1)))
        const p1 = yield* until(call(async () => {
          for await (const p of js.client.dht.findProviders(c1, 1)) return p
          throw new Error("no provider yet")
        }))
        expect(p1.id.toString()).toBe(ours.peerId)
        const c2 = yield* cid("provided by js")
        yield* until(call(() => js.client.dht.provide(c2)))
        const p2 = yield* until(call(async () => {
          for await (const p of ours.client.dht.findProviders(c2, 1)) return p
          throw new Error("no provider yet")
        }))
        expect(p2.id.toString()).toBe(js.peerId)

        // values both ways: each stores the other's /pk/ record, the other reads it
        const pkBytes = (peer: string) => publicKeyToProtobuf(peerIdFromString(peer).publicKey!)
        const ourKey = new Uint8Array([...text("/pk/"), ...peerIdFromString(ours.peerId).toMultihash().bytes])
        const jsKey = new Uint8Array([...text("/pk/"), ...peerIdFromString(js.peerId).toMultihash().bytes])
        yield* until(call(() => ours.client.dht.put(ourKey, pkBytes(ours.peerId))))
        const gotByJs = yield* until(call(() => js.client.dht.get(ourKey)))
        expect(Buffer.from(gotByJs).equals(Buffer.from(pkBytes(ours.peerId)))).toBe(true)
        yield* until(call(() => js.client.dht.put(jsKey, pkBytes(js.peerId))))
        const gotByOurs = yield* until(call(() => ours.client.dht.get(jsKey)))
        expect(Buffer.from(gotByOurs).equals(Buffer.from(pkBytes(js.peerId)))).toBe(true)

        yield* pubsubBothWays(ours, js, "gossip-topic")
      }),
    240_000
  )

  it.live(
    "CONTROL.md/PUBSUB.md rsa (ours, --identity), secp256k1 (js), tls, mplex: js connects, echo, floodsub",
    () =>
      Effect.gen(function*() {
        const id = yield* identityFile("RSA")
        const [ours, js] = yield* Effect.all([
          ourDaemon({
            args: ["--identity", id.file, "--security", "tls", "--muxer", "mplex", "--pubsub", "floodsub"]
          }),
          Effect.flatMap(
            Keys.generate("Secp256k1"),
            (k) => jsDaemon({ privateKey: k, security: ["tls"], muxers: ["mplex"], pubsub: "floodsub" })
          )
        ], { concurrency: 2 })
        expect(ours.peerId).toBe(id.peerId)
        expect(ours.peerId.startsWith("Qm")).toBe(true) // RSA: a sha256 multihash id
        expect(js.peerId.startsWith("16Uiu2")).toBe(true) // secp256k1
        yield* connect(js, ours)
        expect((yield* call(() => ours.client.listPeers())).map(String)).toEqual([js.peerId])
        yield* echoBothWays(ours, js)
        yield* pubsubBothWays(ours, js, "flood-topic")
      }),
    240_000
  )

  it.live(
    "plaintext/README.md secp256k1 (ours, --identity), rsa (js), plaintext, yamux: connect, echo each way",
    () =>
      Effect.gen(function*() {
        const id = yield* identityFile("Secp256k1")
        const [ours, js] = yield* Effect.all([
          ourDaemon({ args: ["--identity", id.file, "--security", "plaintext"] }),
          Effect.flatMap(Keys.generate("RSA"), (k) => jsDaemon({ privateKey: k, security: ["plaintext"] }))
        ], { concurrency: 2 })
        expect(ours.peerId).toBe(id.peerId)
        yield* connect(ours, js)
        yield* echoBothWays(ours, js)
        // and the other direction of dialing, after a disconnect
        yield* call(() =>
          ours.client.send({
            type: Request.Type.DISCONNECT,
            disconnect: { peer: peerIdFromString(js.peerId).toMultihash().bytes }
          })
        )
        yield* until(call(async () => {
          const left = await ours.client.listPeers()
          if (left.length > 0) throw new Error(`still connected: ${left}`)
        }))
        yield* connect(js, ours)
        // the js client's handler listener serves one connection, then closes, and the js daemon
        // refuses a protocol registered before: a second protocol
        yield* call(() => js.client.registerStreamHandler("/echo/2.0.0", echoHandler))
        expect(yield* call(() => echoOver(ours.client, peerIdFromString(js.peerId), "again", "/echo/2.0.0"))).toBe(
          "again"
        )
      }),
    240_000
  )
})
