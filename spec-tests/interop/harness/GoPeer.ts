/**
 * GoPeer: the go-libp2p test peer (spec-tests/interop/go, go-libp2p v0.52: TCP and/or WebSocket,
 * Noise and/or TLS, Yamux, identify, ping, and harness handlers for `/echo/1.0.0` and
 * `/perf/1.0.0`) in its own process. It speaks js-peer.mjs's line protocol (documented at the top
 * of go/main.go), so it is driven by JsPeer.ts's process driver and handle: the same `dial`,
 * `ping`, `identify`, `perf`, `echo`, `connections`, … and the same `HarnessError`s.
 *
 * The binary comes from goBuild.ts (the vitest global setup builds it once per run and tests get
 * its path with `inject("goPeer")`). Differences from the js peer, all from go-libp2p: `ping` is
 * go's ping service (fractional ms, one stream); `identify` has no `fresh` (go identifies a
 * connection once; push updates the peer store); `negotiateFully` is ignored (go decides when to
 * negotiate lazily); the ready line's `nodeVersion` is the Go version (e.g. "go1.26.8").
 */
import { Effect, type Scope } from "effect"
import * as JsPeer from "./JsPeer.ts"

export type GoPeer = JsPeer.JsPeer

export interface Options extends JsPeer.ProcessOptions {
  /** Listen multiaddrs; default ["/ip4/127.0.0.1/tcp/0"]. */
  readonly listen?: ReadonlyArray<string>
  /** go transports; default ["tcp"]. "websockets" is p2p/transport/websocket (listen on ".../tcp/0/ws"). */
  readonly transports?: ReadonlyArray<"tcp" | "websockets">
  /** Protobuf-encoded private key (libp2p key format); a fresh Ed25519 key when absent. */
  readonly privateKey?: Uint8Array
  /** Which harness services run; all default to on (identify always runs in go-libp2p). */
  readonly services?: {
    readonly identify?: boolean
    readonly ping?: boolean
    readonly echo?: boolean
    readonly perf?: boolean
  }
  readonly userAgent?: string
  /** Security in preference order; default ["noise"]. "tls" is p2p/security/tls. */
  readonly encrypters?: ReadonlyArray<"noise" | "tls">
  /** go-libp2p v0.52 ships only yamux (mplex was removed from go-libp2p). */
  readonly muxers?: ReadonlyArray<"yamux">
  /** go-libp2p-pubsub gossipsub (go/pubsub.go): `{ router?: "gossipsub", heartbeatMs?, floodPublish? }`; drive it with `JsPeer.pubsubOf`. */
  readonly pubsub?: JsPeer.JsonObject
  /** go-libp2p-kad-dht (go/kad.go): `{ clientMode?, protocol? }` as the js peer's; drive it with `JsKad`. */
  readonly kad?: JsPeer.JsonObject
  /** circuit relay v2 (go/relay.go): `server` runs go's relay; go's relay client is always on. */
  readonly relay?: { readonly server?: true }
  /** go-libp2p autonatv2 (go/autonat.go): `{ allowPrivateAddrs? }`; command `autonatCheck` (wt-autonat). */
  readonly autonat?: JsPeer.JsonObject
  /**
   * DCUtR hole punching (go/holepunch.go): `{ forcePrivate? }` (default true: ForceReachabilityPrivate);
   * events `holepunch:ready` and `holepunch` (go's tracer), command `pingConn`.
   */
  readonly holepunch?: JsPeer.JsonObject
  /** Run the binary in this network namespace (`ip netns exec <netns>`: root, Linux; support/netns.ts). */
  readonly netns?: string
}

let counter = 0

/** Spawn the go peer at `binary`; it lives until the enclosing scope closes. */
export const start = (binary: string, options: Options = {}): Effect.Effect<GoPeer, JsPeer.HarnessError, Scope.Scope> =>
  JsPeer.startProcess({
    command: options.netns !== undefined ? "ip" : binary,
    args: [
      ...(options.netns !== undefined ? ["netns", "exec", options.netns, binary] : []),
      JSON.stringify({
        ...JsPeer.configOf(options),
        ...(options.holepunch !== undefined ? { holepunch: options.holepunch } : {})
      })
    ],
    name: `go-peer#${++counter}`,
    stderrEnv: "GO_PEER_STDERR"
  }, options)

/** The protocol of the go peer's outbound pubsub stream to `peerId` (null before it opened one). */
export const pubsubProtocol = (go: GoPeer, peerId: string) =>
  Effect.map(
    go.command("pubsubProtocol", { peerId }),
    (r) => (typeof r["protocol"] === "string" ? r["protocol"] : null)
  )
