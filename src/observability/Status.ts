/**
 * The node's status as one JSON-ready snapshot (`GET /api/status`, and the
 * status page built from it): identity, listen and observed addresses,
 * reachability, every connection with its streams, byte totals, and the
 * sections other parts of the node contribute.
 *
 * Sections: a protocol that has something to show (Kad's routing table,
 * gossipsub's meshes) registers a section with {@link StatusSections} while
 * its layer lives, the way it registers a stream handler with the Registrar:
 *
 * ```ts
 * const sections = yield* StatusSections
 * yield* sections.register("routingTable", Effect.sync(() => table.snapshot()))
 * ```
 *
 * The snapshot reads the services' state as it is (no events are buffered
 * for it); reading it costs the node nothing between requests. Peer ids
 * appear here (unlike the metrics' labels): this is one node's own view.
 *
 * Anchors: go-libp2p's `p2p/host/resource-manager` "ResourceScopeViewer" and
 * js-libp2p's `@libp2p/devtools-metrics` (what a dashboard wants), effect's
 * `Context.Service` registration pattern.
 *
 * @since 0.1.0
 */
import { Clock, Context, Effect, Layer, type Scope } from "effect"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import { AddressManager } from "../host/AddressManager.ts"
import { Host } from "../host/Host.ts"

/** A section's content: anything JSON can carry. */
export type Section = Effect.Effect<unknown>

export class StatusSections extends Context.Service<StatusSections, {
  /** Show `section` under `name` in the status while the current scope lasts (a later `register` of `name` wins). */
  readonly register: (name: string, section: Section) => Effect.Effect<void, never, Scope.Scope>
  /** Every registered section, read now. */
  readonly read: Effect.Effect<Readonly<Record<string, unknown>>>
}>()("effect-libp2p/StatusSections") {}

export const makeSections = Effect.sync(() => {
  const table = new Map<string, Section>()
  return StatusSections.of({
    register: (name, section) =>
      Effect.uninterruptible(
        Effect.andThen(
          Effect.sync(() => table.set(name, section)),
          Effect.addFinalizer(() => Effect.sync(() => table.get(name) === section && table.delete(name)))
        )
      ),
    read: Effect.suspend(() =>
      Effect.map(
        Effect.forEach(Array.from(table), ([name, section]) => Effect.map(section, (v) => [name, v] as const)),
        Object.fromEntries
      )
    )
  })
})

export const layerSections = Layer.effect(StatusSections, makeSections)

export interface StreamStatus {
  readonly id: string
  readonly protocol: string
  readonly direction: "inbound" | "outbound"
}

export interface ConnectionStatus {
  readonly id: string
  readonly peerId: string
  readonly addr: string
  readonly direction: "inbound" | "outbound"
  /** Milliseconds since the upgrade finished. */
  readonly ageMs: number
  readonly security: string
  readonly muxer: string
  readonly bytesRead: number | null
  readonly bytesWritten: number | null
  readonly streams: ReadonlyArray<StreamStatus>
}

export interface Status {
  readonly peerId: string
  /** Clock time (ms) of the snapshot. */
  readonly time: number
  readonly addrs: ReadonlyArray<string>
  readonly observedAddrs: ReadonlyArray<
    { readonly addr: string; readonly observers: number; readonly trusted: boolean }
  >
  readonly reachability: string
  readonly connections: ReadonlyArray<ConnectionStatus>
  readonly totals: {
    readonly connections: number
    readonly streams: number
    readonly bytesRead: number
    readonly bytesWritten: number
  }
  /** What other parts of the node contribute ({@link StatusSections}), e.g. `routingTable`, `pubsub`. */
  readonly sections: Readonly<Record<string, unknown>>
}

/** The snapshot, read from the node's services. */
export const snapshot: Effect.Effect<Status, never, Host | AddressManager | StatusSections> = Effect.gen(function*() {
  const host = yield* Host
  const addressManager = yield* AddressManager
  const sections = yield* StatusSections
  const now = yield* Clock.currentTimeMillis
  const observed = yield* addressManager.observed
  let streams = 0
  const connections = host.connections().map((c): ConnectionStatus => {
    const open = c.streams()
    streams += open.length
    const bytes = c.bytes()
    return {
      id: c.id,
      peerId: PeerId.toString(c.remotePeer),
      addr: Multiaddr.toString(c.remoteAddr),
      direction: c.direction,
      ageMs: Math.max(0, now - c.openedAt),
      security: c.security,
      muxer: c.muxer,
      bytesRead: bytes?.read ?? null,
      bytesWritten: bytes?.written ?? null,
      streams: open.map((s) => ({ id: s.id, protocol: s.protocol, direction: s.direction }))
    }
  })
  const bytes = host.bytes()
  return {
    peerId: PeerId.toString(host.peerId),
    time: now,
    addrs: host.addrs().map(Multiaddr.toString),
    observedAddrs: observed.map((o) => ({
      addr: Multiaddr.toString(o.observed),
      observers: o.observers,
      trusted: o.trusted
    })),
    reachability: addressManager.reachability(),
    connections,
    totals: { connections: connections.length, streams, bytesRead: bytes.read, bytesWritten: bytes.written },
    sections: yield* sections.read
  }
})
