/**
 * `dht find-peer|get|put|provide|find-providers`: one-shot Kad-DHT operations
 * through a temporary client-mode node (ARCHITECTURE.md §7, docs/CLI.md). The
 * node dials the `--bootstrap` peers, lets Kad learn them (a refresh), runs the
 * operation, prints its line(s) and closes. A failed operation is an error line
 * whose `_tag` is the reason (`NotFound`, `NoPeers`, `InvalidRecord`, …), exit 1.
 *
 * Keys are written `/<namespace>/<peer id>` (`/pk/…`, `/ipns/…`): the binary key
 * is the namespace and the peer id's multihash bytes. CIDs: a CIDv0 (`Qm…`,
 * base58btc) or a multibase CIDv1; the DHT key is the CID's multihash.
 *
 * @since 0.2.0
 */
import { Bytes, Context, Effect, FileSystem, Layer, Option, Result } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Nodes from "../../../layers/Node.ts"
import * as Keys from "../../core/Keys.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as Multibase from "../../core/Multibase.ts"
import * as Multihash from "../../core/Multihash.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Kad from "../../protocols/kad/Kad.ts"
import { json, parseMultiaddr, type StackFlags, stackFlags, stackOptions } from "../flags.ts"
import * as IdentityFile from "../identityFile.ts"
import { emit, usageAsHelp, UsageError } from "../output.ts"

/** The flags of every `dht` command. */
const commonFlags = {
  bootstrap: Flag.String("bootstrap").pipe(
    Flag.withDescription("multiaddr (with /p2p/<peer id>) of a DHT peer to start from (repeatable)"),
    Flag.atLeast(0)
  ),
  lan: Flag.Boolean("lan").pipe(
    Flag.withDescription(`use the LAN DHT (${Kad.LAN_PROTOCOL}) instead of ${Kad.PROTOCOL}`),
    Flag.withDefault(false)
  ),
  json,
  ...stackFlags
}

interface CommonFlags extends StackFlags {
  readonly bootstrap: ReadonlyArray<string>
  readonly lan: boolean
  readonly json: boolean
}

/** A key written `/<namespace>/<peer id>` → namespace bytes + the peer id's multihash bytes. */
export const parseKey = (text: string) =>
  Effect.gen(function*() {
    const m = /^\/([^/]+)\/([^/]+)$/.exec(text)
    if (m === null) {
      return yield* new UsageError({ message: `bad key "${text}": write /pk/<peer id> or /ipns/<peer id>` })
    }
    const peer = PeerId.fromString(m[2]!)
    if (Result.isFailure(peer)) {
      return yield* new UsageError({ message: `bad key "${text}": ${peer.failure.message}` })
    }
    return Bytes.concat([new TextEncoder().encode(`/${m[1]}/`), PeerId.toBytes(peer.success)])
  })

/** A CID's DHT key (its multihash): `Qm…` (CIDv0, base58btc) or a multibase CIDv1. */
export const parseCid = (text: string) =>
  Effect.gen(function*() {
    const bad = (why: string) => new UsageError({ message: `bad CID "${text}": ${why}` })
    const bytes = /^Qm[1-9A-HJ-NP-Za-km-z]{44}$/.test(text)
      ? Multibase.baseDecode("base58btc", text)
      : Result.map(Multibase.decode(text), (d) => d.bytes)
    if (Result.isFailure(bytes)) return yield* bad(bytes.failure.message)
    if (bytes.success[0] !== 0x01 && bytes.success[0] !== 0x12) return yield* bad("not a CIDv0 or CIDv1")
    const key = Kad.cidKey(bytes.success)
    const mh = Multihash.decode(key)
    if (Result.isFailure(mh)) return yield* bad(mh.failure.message)
    return key
  })

/** Run `body` with a temporary client-mode Kad node that has learnt the bootstrap peers. */
const withDht = <A, E, R>(
  flags: CommonFlags,
  privateKey: Keys.PrivateKey | undefined,
  body: (kad: Kad.Kad["Service"]) => Effect.Effect<A, E, R>
) =>
  Effect.gen(function*() {
    const preset = yield* stackOptions(flags)
    const bootstrap = yield* Effect.forEach(flags.bootstrap, parseMultiaddr)
    return yield* Effect.scoped(Effect.gen(function*() {
      const node = Nodes.Default({ ...preset, ...(privateKey !== undefined ? { privateKey } : {}) })
      const layer = Kad.layer({
        mode: "client",
        protocol: flags.lan ? Kad.LAN_PROTOCOL : Kad.PROTOCOL,
        bootstrap,
        refreshInterval: "1 hour"
      }).pipe(Layer.provideMerge(node))
      const kad = Context.get(yield* Layer.build(layer), Kad.Kad)
      yield* kad.refresh
      return yield* Effect.mapError(body(kad), (e) => e instanceof Kad.KadError ? e.reason : e)
    }))
  })

const peerLine = (info: Kad.PeerInfo) => ({
  peerId: PeerId.toString(info.peerId),
  addrs: info.addrs.map(Multiaddr.toString)
})

const findPeer = Command.make(
  "find-peer",
  { peerId: Argument.String("peerId").pipe(Argument.withDescription("the peer id to look up")), ...commonFlags },
  (flags) =>
    Effect.gen(function*() {
      const peer = PeerId.fromString(flags.peerId)
      if (Result.isFailure(peer)) return yield* new UsageError({ message: peer.failure.message })
      const info = yield* withDht(flags, undefined, (kad) => kad.findPeer(peer.success))
      const line = peerLine(info)
      yield* emit(flags.json, { event: "peer", ...line }, `${line.peerId} ${line.addrs.join(" ")}`)
    }).pipe(usageAsHelp(["effect-libp2p", "dht", "find-peer"]))
).pipe(Command.withDescription("find a peer's addresses"))

const keyArgument = Argument.String("key").pipe(Argument.withDescription("/pk/<peer id> or /ipns/<peer id>"))

const get = Command.make(
  "get",
  { key: keyArgument, ...commonFlags },
  (flags) =>
    Effect.gen(function*() {
      const key = yield* parseKey(flags.key)
      const value = yield* withDht(flags, undefined, (kad) => kad.get(key))
      const valueBase64 = Buffer.from(value).toString("base64")
      yield* emit(flags.json, { event: "value", key: flags.key, valueBase64 }, valueBase64)
    }).pipe(usageAsHelp(["effect-libp2p", "dht", "get"]))
).pipe(Command.withDescription("get the best record for a key (its value, base64)"))

const put = Command.make(
  "put",
  { key: keyArgument, file: Argument.String("file").pipe(Argument.withDescription("the value")), ...commonFlags },
  (flags) =>
    Effect.gen(function*() {
      const key = yield* parseKey(flags.key)
      const fs = yield* FileSystem.FileSystem
      const value = yield* Effect.mapError(
        fs.readFile(flags.file),
        (e) => new UsageError({ message: `cannot read ${flags.file}: ${e.message}` })
      )
      const peers = yield* withDht(flags, undefined, (kad) => kad.put(key, value))
      yield* emit(flags.json, { event: "put", key: flags.key, peers }, `stored at ${peers} peers`)
    }).pipe(usageAsHelp(["effect-libp2p", "dht", "put"]))
).pipe(Command.withDescription("store a record (the file's bytes) at the closest peers"))

const cidArgument = Argument.String("cid").pipe(Argument.withDescription("a CIDv0 (Qm…) or multibase CIDv1"))

const provide = Command.make(
  "provide",
  {
    cid: cidArgument,
    identity: Flag.String("identity").pipe(
      Flag.withDescription("provide as this identity (private key file; created if missing); default a new one"),
      Flag.optional
    ),
    ...commonFlags
  },
  (flags) =>
    Effect.gen(function*() {
      const key = yield* parseCid(flags.cid)
      const privateKey = Option.isSome(flags.identity)
        ? yield* IdentityFile.load(flags.identity.value)
        : yield* Keys.generate("Ed25519")
      const peers = yield* withDht(flags, privateKey, (kad) => kad.provide(key))
      const peerId = PeerId.toString(PeerId.fromPublicKey(privateKey.publicKey))
      yield* emit(
        flags.json,
        { event: "provide", cid: flags.cid, peerId, peers },
        `${peerId} provides ${flags.cid} (${peers} peers)`
      )
    }).pipe(usageAsHelp(["effect-libp2p", "dht", "provide"]))
).pipe(Command.withDescription("announce a temporary node (or --identity) as a provider of a CID"))

const findProviders = Command.make(
  "find-providers",
  {
    cid: cidArgument,
    count: Flag.Int("count").pipe(
      Flag.filter((n: number) => n >= 1, () => "an integer >= 1"),
      Flag.withDescription("stop after this many providers (default 20)"),
      Flag.optional
    ),
    ...commonFlags
  },
  (flags) =>
    Effect.gen(function*() {
      const key = yield* parseCid(flags.cid)
      const providers = yield* withDht(
        flags,
        undefined,
        (kad) => kad.findProviders(key, Option.isSome(flags.count) ? { limit: flags.count.value } : {})
      )
      if (providers.length === 0) return yield* new Kad.NotFound({ message: `no provider of ${flags.cid}` })
      for (const p of providers) {
        const line = peerLine(p)
        yield* emit(
          flags.json,
          { event: "provider", cid: flags.cid, ...line },
          `${line.peerId} ${line.addrs.join(" ")}`
        )
      }
    }).pipe(usageAsHelp(["effect-libp2p", "dht", "find-providers"]))
).pipe(Command.withDescription("find providers of a CID"))

export const command = Command.make("dht").pipe(
  Command.withDescription("one-shot Kad-DHT operations through a temporary client-mode node"),
  Command.withSubcommands([findPeer, get, put, provide, findProviders])
)
