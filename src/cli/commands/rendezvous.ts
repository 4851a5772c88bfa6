/**
 * Rendezvous on `node` (ARCHITECTURE.md §7 "Discovery on node", docs/CLI.md):
 * `--rendezvous-server` serves `/rendezvous/1.0.0`, its registrations in the
 * node's datastore (the data directory's SQLite file, memory with
 * `--ephemeral`); `--rendezvous <multiaddr-with-/p2p> --namespace <ns>` (both
 * repeatable) registers at each point in each namespace, prints
 * `rendezvous:registered`, polls each point for each namespace at start and
 * every 10 s, prints each newly discovered peer once
 * (`peer:discovery`, source `rendezvous`) and dials it when not connected.
 *
 * @since 0.2.0
 */
import { Context, Duration, Effect, Layer, Option, Result, Schedule } from "effect"
import { Flag } from "effect/cli"
import type { Registrar } from "../../connection/Registrar.ts"
import type { Identity } from "../../core/Identity.ts"
import * as Multiaddr from "../../core/Multiaddr.ts"
import * as PeerId from "../../core/PeerId.ts"
import { Datastore } from "../../datastore/Datastore.ts"
import * as MemoryDatastore from "../../datastore/Memory.ts"
import * as PeerDiscovery from "../../discovery/PeerDiscovery.ts"
import { Host } from "../../host/Host.ts"
import { Peerstore } from "../../host/Peerstore.ts"
import * as Rendezvous from "../../protocols/rendezvous/Rendezvous.ts"
import { emit, errorInfo, printError, UsageError } from "../output.ts"

export const flags = {
  rendezvousServer: Flag.Boolean("rendezvous-server").pipe(
    Flag.withDescription("serve /rendezvous/1.0.0 (registrations kept in the data directory's datastore)"),
    Flag.withDefault(false)
  ),
  rendezvous: Flag.String("rendezvous").pipe(
    Flag.withDescription("register at this rendezvous point (multiaddr with /p2p; repeatable; needs --namespace)"),
    Flag.atLeast(0)
  ),
  namespace: Flag.String("namespace").pipe(
    Flag.withDescription("with --rendezvous: register and discover peers in this namespace (repeatable)"),
    Flag.atLeast(0)
  ),
  rendezvousRecordFormat: Flag.Literals("rendezvous-record-format", ["peer-record", "routing-state"]).pipe(
    Flag.withDescription(
      "with --rendezvous: the envelope of our signed record (default peer-record; routing-state for rust-libp2p points)"
    ),
    Flag.optional
  )
}

export interface RendezvousFlags {
  readonly rendezvousServer: boolean
  readonly rendezvous: ReadonlyArray<string>
  readonly namespace: ReadonlyArray<string>
  readonly rendezvousRecordFormat: Option.Option<Rendezvous.RecordFormat>
}

export const defaultFlags: RendezvousFlags = {
  rendezvousServer: false,
  rendezvous: [],
  namespace: [],
  rendezvousRecordFormat: Option.none()
}

/** The `rendezvous` section of `config.json`. */
export interface RendezvousConfig {
  readonly server?: boolean | undefined
  readonly points?: ReadonlyArray<string> | undefined
  readonly namespaces?: ReadonlyArray<string> | undefined
  readonly recordFormat?: Rendezvous.RecordFormat | undefined
}

/** The effective settings: flags over the config file's `rendezvous` section. */
export const effective = (flags: RendezvousFlags, file: RendezvousConfig | undefined) => ({
  server: flags.rendezvousServer || (file?.server ?? false),
  points: flags.rendezvous.length > 0 ? flags.rendezvous : [...(file?.points ?? [])],
  namespaces: flags.namespace.length > 0 ? flags.namespace : [...(file?.namespaces ?? [])],
  recordFormat: Option.getOrElse(flags.rendezvousRecordFormat, () => file?.recordFormat ?? "peer-record")
})

export interface Point {
  readonly addr: Multiaddr.Multiaddr
  readonly peerId: PeerId.PeerId
}

export interface RendezvousRun {
  readonly server: boolean
  readonly points: ReadonlyArray<Point>
  readonly namespaces: ReadonlyArray<string>
  readonly recordFormat: Rendezvous.RecordFormat
}

/** Check the settings: points need namespaces and the reverse; points end in /p2p. */
export const check = (
  settings: ReturnType<typeof effective>,
  parse: (text: string) => Effect.Effect<Multiaddr.Multiaddr, UsageError>
): Effect.Effect<RendezvousRun | undefined, UsageError> =>
  Effect.gen(function*() {
    if (settings.points.length > 0 && settings.namespaces.length === 0) {
      return yield* new UsageError({ message: "--rendezvous needs --namespace <ns>" })
    }
    if (settings.namespaces.length > 0 && settings.points.length === 0) {
      return yield* new UsageError({ message: "--namespace needs --rendezvous <multiaddr>" })
    }
    const points: Array<Point> = []
    for (const text of settings.points) {
      const addr = yield* parse(text)
      const id = Multiaddr.getPeerId(addr)
      const peerId = id === undefined ? undefined : PeerId.fromString(id)
      if (peerId === undefined || Result.isFailure(peerId)) {
        return yield* new UsageError({ message: `--rendezvous ${text}: the address must end in /p2p/<peer id>` })
      }
      points.push({ addr, peerId: peerId.success })
    }
    if (!settings.server && points.length === 0) return undefined
    return {
      server: settings.server,
      points,
      namespaces: [...new Set(settings.namespaces)],
      recordFormat: settings.recordFormat
    }
  })

/** Serve the rendezvous point on a node (before it prints `listening`, so that no request finds it missing). */
export const serve = (
  node: Context.Context<Registrar>,
  datastore: Datastore["Service"] | undefined
) =>
  Effect.gen(function*() {
    const ds = datastore ?? (yield* MemoryDatastore.make)
    yield* Layer.build(
      Rendezvous.layerServerDatastore().pipe(
        Layer.provide(Layer.succeedContext(Context.add(node, Datastore, ds)))
      )
    )
  })

/** Register at every point in every namespace, and discover there (printing and dialing newcomers). */
export const runOnNode = (
  node: Context.Context<Host | Identity | Peerstore | PeerDiscovery.PeerDiscovery>,
  options: {
    readonly points: ReadonlyArray<Point>
    readonly namespaces: ReadonlyArray<string>
    readonly recordFormat: Rendezvous.RecordFormat
  },
  json: boolean
) =>
  Effect.gen(function*() {
    const client = Context.get(
      yield* Layer.build(
        Rendezvous.layer({ recordFormat: options.recordFormat }).pipe(Layer.provide(Layer.succeedContext(node)))
      ),
      Rendezvous.Rendezvous
    )
    const host = Context.get(node, Host)
    // discovered peers go to the node's discovery hub: it prints them (`peer:discovery`) and its
    // consumer stores their addresses and dials them (PeerDiscovery.connect)
    const discovery = Context.get(node, PeerDiscovery.PeerDiscovery)
    for (const { addr, peerId: server } of options.points) {
      const point = Multiaddr.toString(addr)
      yield* Effect.forkScoped(Effect.gen(function*() {
        // reach the point first (retried with backoff: it may start after us)
        yield* host.dial(addr).pipe(
          Effect.retry({ schedule: Schedule.min([Schedule.exponential("500 millis"), Schedule.spaced("30 seconds")]) })
        )
        for (const namespace of options.namespaces) {
          yield* client.register(server, namespace).pipe(
            Effect.flatMap((ttl) =>
              emit(json, {
                event: "rendezvous:registered",
                server: server.toString(),
                namespace,
                ttl: Math.round(Duration.toSeconds(ttl))
              }, `registered in ${namespace} at ${point}`)
            ),
            Effect.catch((e) => printError(json, errorInfo(e), { addr: point, namespace }))
          )
          yield* discovery.register(client.discoveries(server, namespace))
        }
      }))
    }
  })
