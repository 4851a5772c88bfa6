/**
 * `daemon`: a node driven by the libp2p daemon control protocol
 * (ARCHITECTURE.md §7, docs/CLI.md; the protocol itself is `src/daemon/`).
 * Prints `{"event":"daemon","controlAddr":…,"peerId":…,"addrs":[…]}` once the
 * control socket listens, then runs until SIGINT/SIGTERM.
 *
 * No data directory (go-libp2p-daemon's behaviour): a new Ed25519 identity on
 * every run unless `--identity`, peers and DHT records in memory.
 *
 * @since 0.2.0
 */
import { Context, Effect, Layer, Option } from "effect"
import { Command, Flag } from "effect/cli"
import * as Nodes from "../../../layers/Node.ts"
import { ConnectionManager } from "../../connection/ConnectionManager.ts"
import * as Keys from "../../core/Keys.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import * as Daemon from "../../daemon/Daemon.ts"
import * as HostModule from "../../host/Host.ts"
import { Host, type ListenError } from "../../host/Host.ts"
import * as KeepConnected from "../../host/KeepConnected.ts"
import * as HttpStatus from "../../observability/HttpStatus.ts"
import * as Kad from "../../protocols/kad/Kad.ts"
import { Pubsub } from "../../protocols/pubsub/Pubsub.ts"
import * as RelayServer from "../../protocols/relay/RelayServer.ts"
import {
  httpOptions,
  json,
  observabilityFlags,
  parseMultiaddr,
  type StackFlags,
  stackFlags,
  stackOptions
} from "../flags.ts"
import * as IdentityFile from "../identityFile.ts"
import { emit, errorInfo, Output, printError, Unsupported, usageAsHelp } from "../output.ts"
import * as PubsubCli from "./pubsub.ts"

/** Where the node listens without `--listen` (§7). */
export const DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/0"

const daemonFlags = {
  control: Flag.String("control").pipe(
    Flag.withDescription(
      "control socket: /unix/<path> (mode 0600) or /ip4/127.0.0.1/tcp/<port> (0: a free port the OS picks)"
    )
  ),
  listen: Flag.String("listen").pipe(
    Flag.withDescription(`multiaddr the node listens on (repeatable; default ${DEFAULT_LISTEN})`),
    Flag.atLeast(0)
  ),
  noListen: Flag.Boolean("no-listen").pipe(
    Flag.withDescription("listen nowhere (the node can still dial)"),
    Flag.withDefault(false)
  ),
  identity: Flag.String("identity").pipe(
    Flag.withDescription(
      "private key file (protobuf PrivateKey: Ed25519, RSA, secp256k1, ECDSA); created with a new Ed25519 key if missing"
    ),
    Flag.optional
  ),
  dht: Flag.String("dht").pipe(
    Flag.withDescription("run Kad-DHT: server (answers queries) or client (only asks)"),
    Flag.optional
  ),
  pubsub: Flag.String("pubsub").pipe(Flag.withDescription("run a pubsub router: gossipsub or floodsub"), Flag.optional),
  relay: Flag.Boolean("relay").pipe(
    Flag.withDescription("serve as a circuit relay v2 (hop) for others: reservations, relayed connections"),
    Flag.withDefault(false)
  ),
  bootstrap: Flag.String("bootstrap").pipe(
    Flag.withDescription(
      "multiaddr with /p2p/ dialed at start and kept connected (repeatable; the DHT's bootstrap peers)"
    ),
    Flag.atLeast(0)
  ),
  http: observabilityFlags.http,
  httpPublic: observabilityFlags.httpPublic,
  json,
  ...stackFlags
}

export interface DaemonFlags extends StackFlags {
  readonly control: string
  readonly listen: ReadonlyArray<string>
  readonly noListen: boolean
  readonly identity: Option.Option<string>
  readonly dht: Option.Option<string>
  readonly pubsub: Option.Option<string>
  readonly relay: boolean
  readonly bootstrap: ReadonlyArray<string>
  readonly http: Option.Option<string>
  readonly httpPublic: boolean
  readonly json: boolean
}

const unsupported = (message: string) => Effect.fail(new Unsupported({ message }))

/** Names given to `--security`/`--muxer` that we do not have: Unsupported (§7), before the usage checks. */
const checkNames = (flag: string, value: Option.Option<string>, known: ReadonlyArray<string>) => {
  if (Option.isNone(value)) return Effect.void
  const unknown = value.value.split(",").map((x) => x.trim()).filter((x) => x.length > 0 && !known.includes(x))
  return unknown.length === 0
    ? Effect.void
    : unsupported(`${flag}: ${unknown.join(", ")} not supported (supported: ${known.join(", ")})`)
}

/** `daemon`: check the flags, build the node and the daemon, print the `daemon` line, run until interrupted. */
export const main = (flags: DaemonFlags) =>
  Effect.gen(function*() {
    yield* checkNames("--security", flags.security, Nodes.securityNames)
    yield* checkNames("--muxer", flags.muxer, Nodes.muxerNames)
    const dht = Option.getOrUndefined(flags.dht)
    if (dht !== undefined && dht !== "server" && dht !== "client") {
      return yield* unsupported(`--dht: "${dht}" not supported (server, client)`)
    }
    const router = Option.getOrUndefined(flags.pubsub)
    if (router !== undefined && !PubsubCli.routerNames.some((r) => r === router)) {
      return yield* unsupported(`--pubsub: "${router}" not supported (${PubsubCli.routerNames.join(", ")})`)
    }
    const preset = yield* stackOptions(flags)
    const control = yield* parseMultiaddr(flags.control)
    const listen = flags.noListen
      ? []
      : yield* Effect.forEach(flags.listen.length > 0 ? flags.listen : [DEFAULT_LISTEN], parseMultiaddr)
    const bootstrap = yield* Effect.forEach(flags.bootstrap, parseMultiaddr)
    const http = yield* httpOptions(flags)
    const key = Option.isSome(flags.identity)
      ? yield* IdentityFile.load(flags.identity.value)
      : yield* Keys.generate("Ed25519")

    const stack = Nodes.Default({ ...preset, privateKey: key, listen })
    // --relay: the hop service with the node (the relay client is always in the preset)
    const node = yield* Layer.build(flags.relay ? Layer.provideMerge(RelayServer.layer(), stack) : stack).pipe(
      Effect.catchTag(
        "ListenError",
        (e): Effect.Effect<never, Unsupported | ListenError> =>
          e.reason === "NoTransport" ? unsupported(`--listen: no transport for ${e.address}`) : Effect.fail(e)
      )
    )
    const routing = dht === undefined ? Context.empty() : yield* Layer.build(
      Layer.provideMerge(HostModule.layerRouting, Layer.mergeAll(Kad.layerPeerRouting, Kad.layerContentRouting)).pipe(
        Layer.provideMerge(Kad.layer({ mode: dht, bootstrap })),
        Layer.provide(Layer.succeedContext(node))
      )
    )
    const pubsub = router === undefined
      ? Context.empty()
      : Context.make(Pubsub, yield* PubsubCli.build(router as PubsubCli.RouterName, node))
    const ctx = Context.merge(Context.merge(node, routing), pubsub)
    const daemon = Context.get(
      yield* Layer.build(Daemon.layer({ control }).pipe(Layer.provide(Layer.succeedContext(ctx)))),
      Daemon.Daemon
    )
    const host = Context.get(node, Host)
    const peerId = PeerId.toString(host.peerId)
    const controlAddr = Multiaddr.toString(daemon.controlAddr)
    const addrs = host.addrs().map(Multiaddr.toString)
    const status = http === undefined
      ? undefined
      : yield* HttpStatus.serve(http).pipe(Effect.provideContext(ctx))
    yield* emit(
      flags.json,
      { event: "daemon", controlAddr, peerId, addrs, ...(status !== undefined ? { http: status.url } : {}) },
      `peer id: ${peerId}\ncontrol socket: ${controlAddr}\n${addrs.map((a) => `listening on ${a}`).join("\n")}${
        status !== undefined ? `\nstatus page and metrics at ${status.url}` : ""
      }`
    )
    const output = yield* Output
    const connectionManager = Context.get(node, ConnectionManager)
    for (const addr of bootstrap) {
      yield* KeepConnected.keepConnected(host, connectionManager, addr, {
        onDialFailure: (e) =>
          printError(flags.json, errorInfo(e), { addr: Multiaddr.toString(addr) }).pipe(
            Effect.provideService(Output, output)
          )
      })
    }
    return yield* Effect.never
  }).pipe(Effect.scoped)

export const command = Command.make(
  "daemon",
  daemonFlags,
  (flags) => main(flags).pipe(usageAsHelp(["effect-libp2p", "daemon"]))
).pipe(Command.withDescription("run a node driven by the libp2p daemon control protocol (go-libp2p-daemon specs/)"))
