/**
 * mDNS peer discovery on the local network (specs `discovery/mdns.md`; go-libp2p
 * `p2p/discovery/mdns`, js-libp2p `@libp2p/mdns`). A source of the
 * {@link PeerDiscovery} hub: each peer found is announced with source `"mdns"`.
 *
 * Sockets: UDP port 5353 on IPv4 (group 224.0.0.251) and IPv6 (ff02::fb),
 * each bound to the wildcard address with `SO_REUSEADDR` (the port is shared
 * with the system's responder and other nodes on the host) and joined to the
 * group on every interface that has an address of the family (loopback too
 * when `allowLoopback`); effect's `DatagramSocket` (`@effect/platform-node`),
 * scoped: closing the layer leaves the groups and closes the sockets. The
 * IPv4 socket is required (a `DiscoveryError` `Socket` when it cannot be
 * opened); the IPv6 one is best effort (a warning when the host has no IPv6).
 * Outgoing datagrams go to the group through the kernel's route for it.
 *
 * - §Request: a `_p2p._udp.local PTR` query at start and then every
 *   `interval` (default 10 s), each wait jittered to 0.64–0.96 × `interval`
 *   (so the spacing is never above it; `Schedule.jittered` on the `Clock`).
 * - §Response: every query for `_p2p._udp.local` — ours included, as the spec
 *   asks, so peers listening passively see us — is answered with our peer
 *   name (random, 32 lower-case alphanumerics, §Definitions) and one TXT
 *   `dnsaddr=<multiaddr>/p2p/<id>` per LAN address: the Host's listen
 *   addresses on IPv4/IPv6, a wildcard (0.0.0.0, ::) expanded to the
 *   interfaces' addresses, without loopback (unless `allowLoopback`), IPv6
 *   link-local, relayed and non-IP addresses, at most 32. Responses are rate
 *   limited per family (RFC 6762 §6: a record is not multicast again within
 *   one second): queries arriving within `minResponseInterval` (default 1 s)
 *   of the last response are answered once, when it has passed.
 * - Responses: a PTR for `_p2p._udp.local` whose instance is not ours, TXT
 *   records read from answers and additional records (`mdns/packet.ts`).
 *
 * Bad input: datagrams over `maxPacketSize` (default 9,000 bytes, RFC 6762
 * §17) are dropped unread; a packet that does not decode, a response naming
 * no valid peer, TXT records beyond the bounds of `mdns/packet.ts`, addresses
 * whose `/p2p` id differs from the first one are ignored and counted in
 * `stats().ignored`. The receive buffer is bounded (`RECEIVE_BUFFER` batches;
 * a flood loses its oldest datagrams, so the latest are read).
 *
 * @since 0.3.0
 */
import { NodeDatagramSocket } from "@effect/platform-node"
import { Context, Duration, Effect, Layer, Queue, Random, Result, Schedule } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import type * as Scope from "effect/Scope"
import type * as DatagramSocket from "effect/socket/DatagramSocket"
import * as Os from "node:os"
import * as Multiaddr from "../core/Multiaddr.ts"
import { Host } from "../host/Host.ts"
import { clampInt, duration } from "../internal/options.ts"
import * as Packet from "./mdns/packet.ts"
import { DiscoveryError, PeerDiscovery } from "./PeerDiscovery.ts"

export const SOURCE = "mdns"
export const SERVICE_NAME = Packet.SERVICE_NAME
export const PORT = 5353
export const IPV4_GROUP = "224.0.0.251"
export const IPV6_GROUP = "ff02::fb"
/** Datagram batches buffered per socket; a burst beyond it loses its oldest datagrams. */
export const RECEIVE_BUFFER = 128

export interface MdnsOptions {
  /** Query spacing (default 10 s; each wait jittered below it). */
  readonly interval?: Duration.Input | undefined
  /** Least time between two responses on one family (default 1 s). */
  readonly minResponseInterval?: Duration.Input | undefined
  /** Answer loopback addresses and join the group on loopback interfaces (default false). */
  readonly allowLoopback?: boolean | undefined
  /** Use IPv6 (ff02::fb) too (default true; best effort). */
  readonly ipv6?: boolean | undefined
  /** Our peer name (default: 32 random lower-case alphanumerics). */
  readonly peerName?: string | undefined
  /** Datagrams larger than this are dropped unread (default 9,000). */
  readonly maxPacketSize?: number | undefined
  /** UDP port (default 5353; other values only for tests). */
  readonly port?: number | undefined
}

export const defaults = {
  interval: Duration.seconds(10),
  minResponseInterval: Duration.seconds(1),
  maxPacketSize: 9000
} as const

export interface MdnsStats {
  readonly received: number
  readonly ignored: number
  readonly queriesSent: number
  readonly responsesSent: number
}

export class Mdns extends Context.Service<Mdns, {
  readonly peerName: string
  /** Send a query now (besides the periodic ones). */
  readonly query: Effect.Effect<void>
  /** Counters since start. */
  readonly stats: () => MdnsStats
}>()("effect-libp2p/Mdns") {}

/** The local interface addresses of one family (internal ones only with `loopback`). */
const interfaceAddrs = (family: "IPv4" | "IPv6", loopback: boolean) =>
  Object.values(Os.networkInterfaces()).flatMap((list) => list ?? []).filter((i) =>
    i.family === family && (loopback || !i.internal)
  )

const isLinkLocal6 = (ma: Multiaddr.Multiaddr) => {
  const first = Multiaddr.components(ma)[0]
  return first?.code === Multiaddr.codes.ip6 && /^fe[89ab]/i.test(first.value ?? "")
}

/**
 * The addresses to answer with (see the module doc): `listen` (each ending in
 * `/p2p/<id>`) with wildcards expanded over `ipv4`/`ipv6` interface addresses.
 */
export const lanAddrs = (
  listen: ReadonlyArray<Multiaddr.Multiaddr>,
  ipv4: ReadonlyArray<string>,
  ipv6: ReadonlyArray<string>,
  allowLoopback: boolean
): ReadonlyArray<string> => {
  const out: Array<string> = []
  const push = (ma: Multiaddr.Multiaddr) => {
    const text = Multiaddr.toString(ma)
    if (out.length < Packet.MAX_ADDRS && !out.includes(text)) out.push(text)
  }
  for (const addr of listen) {
    const first = Multiaddr.components(addr)[0]
    if (first === undefined || (first.code !== Multiaddr.codes.ip4 && first.code !== Multiaddr.codes.ip6)) continue
    if (Multiaddr.protoCodes(addr).includes(Multiaddr.codes["p2p-circuit"])) continue
    if (Multiaddr.getPeerId(addr) === undefined) continue
    const candidates = Multiaddr.isUnspecified(addr)
      ? (first.code === Multiaddr.codes.ip4 ? ipv4.map((a) => `/ip4/${a}`) : ipv6.map((a) => `/ip6/${a}`)).flatMap(
        (prefix) => {
          const rest = Multiaddr.toString(addr).slice(`/${first.name}/${first.value}`.length)
          const parsed = Multiaddr.fromString(prefix + rest)
          return parsed._tag === "Success" ? [parsed.success] : []
        }
      )
      : [addr]
    for (const c of candidates) {
      if (Multiaddr.isLoopback(c) && !allowLoopback) continue
      if (isLinkLocal6(c)) continue
      push(c)
    }
  }
  return out
}

interface Family {
  readonly name: "IPv4" | "IPv6"
  readonly group: string
}

/** 32 random lower-case alphanumerics from the `Random` service (§Definitions). */
const randomName = Effect.gen(function*() {
  const picks: Array<number> = []
  for (let i = 0; i < 32; i++) picks.push(yield* Random.nextIntBetween(0, 36))
  return Packet.randomPeerName((n) => picks.shift()! % n)
})

export const make = Effect.fnUntraced(function*(options: MdnsOptions = {}) {
  const host = yield* Host
  const discovery = yield* PeerDiscovery
  const interval = duration(options.interval, defaults.interval)
  const minResponse = duration(options.minResponseInterval, defaults.minResponseInterval)
  const allowLoopback = options.allowLoopback ?? false
  const maxPacket = clampInt(options.maxPacketSize, defaults.maxPacketSize, 512, 65_535)
  const port = clampInt(options.port, PORT, 1, 65_535)
  const peerName = options.peerName ?? (yield* randomName)
  const ownInstance = `${peerName}.${SERVICE_NAME}`
  const stats = { received: 0, ignored: 0, queriesSent: 0, responsesSent: 0 }
  const queryBytes = Packet.query()

  const ourAddrs = () =>
    lanAddrs(
      host.addrs(),
      interfaceAddrs("IPv4", allowLoopback).map((i) => i.address),
      interfaceAddrs("IPv6", allowLoopback).filter((i) => !i.address.toLowerCase().startsWith("fe80")).map((i) =>
        i.address
      ),
      allowLoopback
    )

  /** One family's socket: joined, reading, answering. */
  const open = (family: Family): Effect.Effect<Effect.Effect<void>, DatagramSocket.DatagramSocketError, Scope.Scope> =>
    Effect.gen(function*() {
      const socket = yield* NodeDatagramSocket.make({
        family: family.name === "IPv4" ? "ipv4" : "ipv6",
        bind: { address: family.name === "IPv4" ? "0.0.0.0" : "::", port },
        reuseAddress: true,
        ...(family.name === "IPv6" ? { ipv6Only: true } : {}),
        peer: { address: family.group, port },
        multicast: { ttl: 255, loopback: true },
        receiveBuffer: { capacity: RECEIVE_BUFFER, strategy: "sliding" }
      })
      const reader = yield* socket.reader
      const writer = yield* socket.writer
      const group = NetAddress.ipFromStringUnsafe(family.group)
      if (!NetAddress.isMulticast(group)) return yield* Effect.die(`not a multicast group: ${family.group}`)
      let joined = 0
      for (const i of interfaceAddrs(family.name, allowLoopback)) {
        const ingress = family.name === "IPv4"
          ? NetAddress.ipFromStringUnsafe(i.address)
          : (i.scopeid ?? 0)
        if (family.name === "IPv6" && ingress === 0) continue
        const ok = yield* Effect.result(
          reader.joinMulticast({ group, interface: ingress } as Parameters<typeof reader.joinMulticast>[0])
        )
        if (Result.isSuccess(ok)) joined++
      }
      if (joined === 0) yield* reader.joinMulticast({ group })

      const send = (payload: Uint8Array) =>
        writer.write({ payload }).pipe(
          Effect.catch((e) => Effect.logDebug(`mdns: ${family.name} send failed: ${e.message}`))
        )

      // the responder: requests coalesce in a one-slot queue; one response per `minResponse`
      const wake = yield* Queue.sliding<void>(1)
      yield* Effect.forkScoped(Effect.forever(Effect.gen(function*() {
        yield* Queue.take(wake)
        const addrs = ourAddrs()
        if (addrs.length > 0) {
          yield* send(Packet.response(peerName, addrs))
          stats.responsesSent++
        }
        yield* Effect.sleep(minResponse)
      })))

      const handle = (payload: Uint8Array) =>
        Effect.gen(function*() {
          stats.received++
          if (payload.byteLength > maxPacket) {
            stats.ignored++
            return
          }
          const message = Packet.parse(payload)
          if (Result.isFailure(message)) {
            stats.ignored++
            return
          }
          const m = message.success
          if (m._tag === "Query") {
            if (m.asksForPeers) yield* Queue.offer(wake, undefined)
            return
          }
          if (m.peer === undefined) {
            stats.ignored++
            return
          }
          if (m.peer.instance === ownInstance) return
          // another host's loopback addresses are not ours to dial (unless loopback is in use)
          const addrs = allowLoopback ? m.peer.addrs : m.peer.addrs.filter((a) => !Multiaddr.isLoopback(a))
          if (addrs.length === 0) return
          yield* discovery.announce({ peerId: m.peer.peerId, addrs, source: SOURCE })
        })

      yield* Effect.forkScoped(
        Effect.forever(
          Effect.flatMap(reader.pull, (batch) => Effect.forEach(batch, (d) => handle(d.payload), { discard: true }))
        ).pipe(Effect.catch((e) => Effect.logWarning(`mdns: ${family.name} socket closed: ${e.message}`)))
      )
      return Effect.andThen(send(queryBytes), Effect.sync(() => stats.queriesSent++))
    })

  const v4 = yield* open({ name: "IPv4", group: IPV4_GROUP }).pipe(
    Effect.mapError((e) =>
      new DiscoveryError({ source: SOURCE, reason: "Socket", message: `mDNS IPv4 socket: ${e.message}`, cause: e })
    )
  )
  const v6 = options.ipv6 === false ? undefined : yield* open({ name: "IPv6", group: IPV6_GROUP }).pipe(
    Effect.catch((e) => Effect.as(Effect.logWarning(`mdns: no IPv6 (${e.message})`), undefined))
  )
  const query = Effect.andThen(v4, v6 ?? Effect.void)
  const spacing = Duration.times(interval, 0.8)
  yield* Effect.forkScoped(Effect.repeat(query, Schedule.spaced(spacing).pipe(Schedule.jittered)))
  return Mdns.of({ peerName, query, stats: () => ({ ...stats }) })
})

/** {@link make} as a Layer (needs Host and PeerDiscovery). */
export const layer = (options?: MdnsOptions) => Layer.effect(Mdns, make(options))
