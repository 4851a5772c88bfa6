/**
 * Fairness in the transient pools of the {@link ResourceManager}: the inbound
 * connections still handshaking and the inbound streams whose protocol is
 * not agreed yet. Both pools are shared by every remote; without shares one
 * host fills a pool and every other peer's new connections or streams are
 * refused (issue 23: two attacker connections with thousands of
 * never-negotiated streams; thousands of stalled Noise handshakes).
 *
 * Each pool member carries its keys — source IP, source subnet (/24 for
 * IPv4, /64 for IPv6 by default) and, for streams, the peer — and each key
 * kind has a share: a newcomer whose IP, subnet or peer already holds its
 * share is refused. When the pool itself is full, the heaviest subnet loses
 * its oldest member (evicted: the fiber that reserved it is interrupted,
 * which closes the connection or resets the stream) — unless the newcomer's
 * own subnet is the heaviest, then the newcomer is refused. So one host can
 * never lock the others out.
 *
 * Sources on the allow list are exempt. Loopback is not exempt by default:
 * tests on one machine must see an attacker.
 *
 * Not a libp2p spec: go-libp2p's resource manager limits connections per IP
 * and per subnet (`connmgr`/`rcmgr` "conn limiter") with an allow list; this
 * follows that model and adds eviction of the heaviest user.
 *
 * @since 0.1.0
 */
import * as Multiaddr from "../core/Multiaddr.ts"

/** Shares of the transient pools, and who is exempt. */
export interface FairnessOptions {
  /** Handshaking inbound connections one source IP may hold (default 64: a burst of honest dials from one host fits). */
  readonly handshakesPerIp?: number
  /** Handshaking inbound connections one source subnet may hold (default 128, half the transient pool). */
  readonly handshakesPerSubnet?: number
  /** Unnegotiated inbound streams one peer may hold (default 128). */
  readonly streamsPerPeer?: number
  /** Unnegotiated inbound streams one source IP may hold (default 256). */
  readonly streamsPerIp?: number
  /** Unnegotiated inbound streams one source subnet may hold (default 512). */
  readonly streamsPerSubnet?: number
  /** Prefix length of an IPv4 source subnet (default 24). */
  readonly ipv4SubnetBits?: number
  /** Prefix length of an IPv6 source subnet (default 64). */
  readonly ipv6SubnetBits?: number
  /** Evict the heaviest subnet's oldest member when a pool is full (default true). */
  readonly evictHeaviest?: boolean
  /** Sources exempt from the shares: `/ip4/<addr>[/ipcidr/<bits>]`, `/ip6/…` (default none; loopback is NOT exempt). */
  readonly allow?: ReadonlyArray<Multiaddr.Multiaddr>
}

export type ResolvedFairness = Required<Omit<FairnessOptions, "allow">> & {
  readonly allow: ReadonlyArray<Network>
}

export const defaults = {
  handshakesPerIp: 64,
  handshakesPerSubnet: 128,
  streamsPerPeer: 128,
  streamsPerIp: 256,
  streamsPerSubnet: 512,
  ipv4SubnetBits: 24,
  ipv6SubnetBits: 64,
  evictHeaviest: true
} as const

export interface Network {
  readonly bytes: Uint8Array
  readonly bits: number
}

/** The network of `/ip4/a.b.c.d[/ipcidr/n]` (or ip6); undefined for anything else. */
export const network = (ma: Multiaddr.Multiaddr): Network | undefined => {
  const [ip, cidr] = Multiaddr.components(ma)
  if (ip?.bytes === undefined || (ip.code !== Multiaddr.codes.ip4 && ip.code !== Multiaddr.codes.ip6)) return undefined
  const full = ip.bytes.length * 8
  const bits = cidr !== undefined && cidr.code === Multiaddr.codes.ipcidr && cidr.value !== undefined
    ? Math.min(full, Number(cidr.value))
    : full
  return { bytes: ip.bytes, bits }
}

/** Whether `ip` lies in `net`. */
export const inNetwork = (ip: Uint8Array, net: Network): boolean => {
  if (ip.length !== net.bytes.length) return false
  const whole = net.bits >>> 3
  for (let i = 0; i < whole; i++) if (ip[i] !== net.bytes[i]) return false
  const rest = net.bits & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return (ip[whole]! & mask) === (net.bytes[whole]! & mask)
}

export const resolve = (o: FairnessOptions = {}): ResolvedFairness => ({
  handshakesPerIp: o.handshakesPerIp ?? defaults.handshakesPerIp,
  handshakesPerSubnet: o.handshakesPerSubnet ?? defaults.handshakesPerSubnet,
  streamsPerPeer: o.streamsPerPeer ?? defaults.streamsPerPeer,
  streamsPerIp: o.streamsPerIp ?? defaults.streamsPerIp,
  streamsPerSubnet: o.streamsPerSubnet ?? defaults.streamsPerSubnet,
  ipv4SubnetBits: o.ipv4SubnetBits ?? defaults.ipv4SubnetBits,
  ipv6SubnetBits: o.ipv6SubnetBits ?? defaults.ipv6SubnetBits,
  evictHeaviest: o.evictHeaviest ?? defaults.evictHeaviest,
  allow: (o.allow ?? []).map(network).filter((n): n is Network => n !== undefined)
})

/** Where a connection comes from: its IP and subnet keys, or exempt / unknown. */
export interface Source {
  readonly ip: string
  readonly subnet: string
}

const hex = (bytes: Uint8Array, n: number): string => {
  let s = ""
  for (let i = 0; i < n; i++) s += bytes[i]!.toString(16).padStart(2, "0")
  return s
}

/**
 * The source keys of `remoteAddr`; undefined when it has no IP (memory,
 * unix sockets: nothing to share by) or is on the allow list.
 */
export const sourceOf = (config: ResolvedFairness, remoteAddr: Multiaddr.Multiaddr | undefined): Source | undefined => {
  if (remoteAddr === undefined) return undefined
  const ip = Multiaddr.components(remoteAddr)[0]
  if (ip?.bytes === undefined || (ip.code !== Multiaddr.codes.ip4 && ip.code !== Multiaddr.codes.ip6)) return undefined
  const bytes = ip.bytes
  if (config.allow.some((n) => inNetwork(bytes, n))) return undefined
  const bits = bytes.length === 4 ? config.ipv4SubnetBits : config.ipv6SubnetBits
  const whole = Math.min(bytes.length, bits >>> 3)
  const rest = bits & 7
  const last = rest === 0 || whole >= bytes.length ? "" : ((bytes[whole]! & ((0xff << (8 - rest)) & 0xff)).toString(16))
  return { ip: `ip/${hex(bytes, bytes.length)}`, subnet: `net/${hex(bytes, whole)}${last}/${bits}` }
}

/** The key kinds a pool shares by, in the order they are checked. */
export type ShareKind = "peer" | "ip" | "subnet"

/** A member of a pool: its keys (one per share kind, undefined when unknown) and how to evict it. */
export interface Member {
  readonly keys: ReadonlyArray<string | undefined>
  /** The subnet key (the unit of "heaviest"); undefined when the member has no source. */
  readonly subnet: string | undefined
  /** Stop the member (interrupt the fiber holding it); its slot is given back by the caller. */
  readonly evict: () => void
}

/**
 * One transient pool's shares. Groups are insertion-ordered sets (the first
 * is the oldest member). Refusal checks are O(kinds); finding the heaviest
 * subnet scans the subnets present, done only when the pool is full.
 */
export class Pool {
  readonly kinds: ReadonlyArray<ShareKind>
  readonly caps: ReadonlyArray<number>
  readonly groups = new Map<string, Set<Member>>()
  constructor(kinds: ReadonlyArray<ShareKind>, caps: ReadonlyArray<number>) {
    this.kinds = kinds
    this.caps = caps
  }
  /** The share `keys` would exceed, or undefined. */
  overShare(keys: ReadonlyArray<string | undefined>): { readonly kind: ShareKind; readonly cap: number } | undefined {
    for (let i = 0; i < this.kinds.length; i++) {
      const k = keys[i]
      if (k === undefined) continue
      if ((this.groups.get(k)?.size ?? 0) >= this.caps[i]!) return { kind: this.kinds[i]!, cap: this.caps[i]! }
    }
    return undefined
  }
  add(m: Member): void {
    for (const k of m.keys) {
      if (k === undefined) continue
      let g = this.groups.get(k)
      if (g === undefined) this.groups.set(k, g = new Set())
      g.add(m)
    }
  }
  delete(m: Member): void {
    for (const k of m.keys) {
      if (k === undefined) continue
      const g = this.groups.get(k)
      if (g !== undefined && g.delete(m) && g.size === 0) this.groups.delete(k)
    }
  }
  /**
   * The member to evict so that a newcomer from `subnet` gets in: the oldest
   * of the heaviest subnet, unless that subnet is not heavier than the
   * newcomer's own would be (then undefined: refuse the newcomer).
   */
  victim(subnet: string | undefined): Member | undefined {
    const own = subnet === undefined ? 0 : (this.groups.get(subnet)?.size ?? 0)
    let heaviest: Set<Member> | undefined
    for (const [k, g] of this.groups) {
      if (!k.startsWith("net/")) continue
      if (heaviest === undefined || g.size > heaviest.size) heaviest = g
    }
    if (heaviest === undefined || heaviest.size <= own + 1) return undefined
    return heaviest.values().next().value
  }
}
