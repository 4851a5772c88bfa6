/**
 * MultiaddrNet: which kind of network an address is in, for the decisions
 * that depend on it — which observed addresses to trust and advertise, which
 * addresses AutoNAT may confirm, which ones DCUtR may dial
 * (docs/ARCHITECTURE.md §7 "Address classification"; go-multiaddr/net
 * `IsPublicAddr`/`IsPrivateAddr`; the IANA IPv4 and IPv6 special-purpose
 * address registries).
 *
 * {@link classify} puts every address in exactly one class:
 * - `loopback`: 127/8, ::1, `/dns*` `localhost` ({@link Multiaddr.isLoopback});
 * - `private`: RFC 1918, 100.64/10 (RFC 6598), link local 169.254/16 and
 *   fe80::/10, unique local fc00::/7 ({@link Multiaddr.isPrivate});
 * - `reserved`: not globally routable and not private: IPv4 0/8, 192.0.0/24,
 *   the documentation ranges 192.0.2/24, 198.51.100/24, 203.0.113/24
 *   (RFC 5737), 192.88.99/24, benchmarking 198.18/15, multicast 224/4,
 *   240/4 and broadcast; IPv6 outside global unicast 2000::/3 (::, multicast,
 *   NAT64 64:ff9b::/96, discard 100::/64, …) and inside it the documentation
 *   ranges 2001:db8::/32 and 3fff::/20 (RFC 9637), benchmarking 2001:2::/48,
 *   ORCHID 2001:10::/28 and 2001:20::/28;
 * - `public`: every other IP;
 * - `unknown`: nothing to judge without resolving (`/dns*` names other than
 *   localhost, `/dnsaddr`, `/unix`, `/memory`, …).
 *
 * An IPv4-mapped IPv6 address is judged by its IPv4 part. A list of public
 * CIDRs (`--public-cidr`, for test networks that use documentation or private
 * space as their "internet") turns `private` and `reserved` addresses inside
 * it into `public`; loopback stays loopback.
 *
 * The socket helpers of `Multiaddr.ts` (`toNodeAddress`, `isLoopback`,
 * `isPrivate`, `isThinWaist`) are to move here once no other change is in
 * flight on their call sites (docs/ARCHITECTURE.md §2.3).
 *
 * @since 0.1.0
 */
import { Effect, Result } from "effect"
import * as Os from "node:os"
import * as Codec from "./internal/multiaddrCodec.ts"
import * as Multiaddr from "./Multiaddr.ts"
import * as Varint from "./Varint.ts"

export type AddressClass = "loopback" | "private" | "reserved" | "public" | "unknown"

/** An IP network: the first `bits` bits of `bytes` (4 bytes for IPv4, 16 for IPv6). */
export interface Cidr {
  readonly bytes: Uint8Array
  readonly bits: number
}

/** True when `ip` (4 or 16 bytes) is inside `cidr` (of the same family). */
export const contains = (cidr: Cidr, ip: Uint8Array): boolean => {
  if (ip.length !== cidr.bytes.length) return false
  for (let i = 0; i < cidr.bits; i++) {
    const bit = 0x80 >> (i & 7)
    if (((ip[i >> 3]! ^ cidr.bytes[i >> 3]!) & bit) !== 0) return false
  }
  return true
}

const invalid = (text: string) =>
  Result.fail(
    new Multiaddr.MultiaddrError({
      reason: "InvalidValue",
      message: `multiaddr: ${JSON.stringify(text)} is not a CIDR (a.b.c.d/n, x:y::/n or /ip4|ip6/<ip>/ipcidr/<n>)`
    })
  )

/**
 * A CIDR from `198.51.100.0/24`, `2001:db8::/32`, or the multiaddr form
 * `/ip4/198.51.100.0/ipcidr/24`; an address without a prefix length is a
 * single host (/32 or /128). Bits past the prefix are cleared.
 */
export const parseCidr = (text: string): Result.Result<Cidr, Multiaddr.MultiaddrError> => {
  let ip: Uint8Array | undefined
  let bitsText: string | undefined
  if (text.startsWith("/")) {
    const parsed = Multiaddr.fromString(text)
    if (Result.isFailure(parsed)) return Result.fail(parsed.failure)
    const [a, b, extra] = Multiaddr.components(parsed.success)
    if (a === undefined || (a.code !== Multiaddr.codes.ip4 && a.code !== Multiaddr.codes.ip6) || extra !== undefined) {
      return invalid(text)
    }
    if (b !== undefined && b.code !== Multiaddr.codes.ipcidr) return invalid(text)
    ip = a.bytes
    bitsText = b?.value
  } else {
    const slash = text.indexOf("/")
    const host = slash < 0 ? text : text.slice(0, slash)
    bitsText = slash < 0 ? undefined : text.slice(slash + 1)
    ip = Codec.parseIp4(host) ?? Codec.parseIp6(host)
  }
  if (ip === undefined) return invalid(text)
  const full = ip.length * 8
  const bits = bitsText === undefined ? full : /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : -1
  if (bits < 0 || bits > full) return invalid(text)
  const bytes = new Uint8Array(ip.length)
  for (let i = 0; i < bits; i++) bytes[i >> 3]! |= ip[i >> 3]! & (0x80 >> (i & 7))
  return Result.succeed({ bytes, bits })
}

/** `198.51.100.0/24`, `2001:db8::/32`. */
export const formatCidr = (cidr: Cidr): string =>
  `${cidr.bytes.length === 4 ? Codec.formatIp4(cidr.bytes) : Codec.formatIp6(cidr.bytes)}/${cidr.bits}`

/** An IPv4 network from its leading octets. */
const net4 = (octets: ReadonlyArray<number>, bits: number): Cidr => ({
  bytes: Uint8Array.from([0, 1, 2, 3], (i) => octets[i] ?? 0),
  bits
})
/** An IPv6 network from its leading 16-bit groups. */
const net6 = (groups: ReadonlyArray<number>, bits: number): Cidr => ({
  bytes: Uint8Array.from({ length: 16 }, (_, i) => ((groups[i >> 1] ?? 0) >> (i % 2 === 0 ? 8 : 0)) & 0xff),
  bits
})

const RESERVED4: ReadonlyArray<Cidr> = [
  net4([0], 8), // "this network" (RFC 791)
  net4([192, 0, 0], 24), // IETF protocol assignments (RFC 6890)
  net4([192, 0, 2], 24), // TEST-NET-1 (RFC 5737)
  net4([192, 88, 99], 24), // 6to4 relay anycast (RFC 7526, deprecated)
  net4([198, 18], 15), // benchmarking (RFC 2544)
  net4([198, 51, 100], 24), // TEST-NET-2 (RFC 5737)
  net4([203, 0, 113], 24), // TEST-NET-3 (RFC 5737)
  net4([224], 4), // multicast
  net4([240], 4) // reserved (RFC 1112), with broadcast 255.255.255.255
]
const GLOBAL_UNICAST6 = net6([0x2000], 3)
const RESERVED6: ReadonlyArray<Cidr> = [
  net6([0x2001, 0x0db8], 32), // documentation (RFC 3849)
  net6([0x3fff], 20), // documentation (RFC 9637)
  net6([0x2001, 0x0002], 48), // benchmarking (RFC 5180)
  net6([0x2001, 0x0010], 28), // ORCHID (RFC 4843, deprecated)
  net6([0x2001, 0x0020], 28) // ORCHIDv2 (RFC 7343)
]

const isReservedIp = (ip: Uint8Array): boolean =>
  ip.length === 4
    ? RESERVED4.some((c) => contains(c, ip))
    : !contains(GLOBAL_UNICAST6, ip) || RESERVED6.some((c) => contains(c, ip))

export interface ClassifyOptions {
  /** Networks to treat as public although they are private or reserved (`--public-cidr`); default none. */
  readonly publicCidrs?: ReadonlyArray<Cidr> | undefined
}

/** The class of the network `ma` starts in (see the module doc). */
export const classify = (ma: Multiaddr.Multiaddr, options?: ClassifyOptions): AddressClass => {
  if (Multiaddr.isLoopback(ma)) return "loopback"
  const ip = Multiaddr.ipBytes(ma)
  // `/dns*/localhost` is private to Multiaddr.isPrivate, and loopback by name
  if (ip === undefined) return Multiaddr.isPrivate(ma) ? "loopback" : "unknown"
  const inPublic = options?.publicCidrs?.some((c) => contains(c, ip)) === true
  if (Multiaddr.isPrivate(ma)) return inPublic ? "public" : "private"
  if (isReservedIp(ip)) return inPublic ? "public" : "reserved"
  return "public"
}

/** {@link classify} says `public`. */
export const isPublic = (ma: Multiaddr.Multiaddr, options?: ClassifyOptions): boolean =>
  classify(ma, options) === "public"

/** Goes through a relay (has a `/p2p-circuit` component). */
export const isRelayed = (ma: Multiaddr.Multiaddr): boolean =>
  Multiaddr.components(ma).some((c) => c.code === Multiaddr.codes["p2p-circuit"])

/**
 * An address split into its thin waist — `/ip4|ip6/<ip>/tcp|udp/<port>`, its
 * first two components — and the rest (`/ws`, `/quic-v1`, `/p2p/…`, or
 * empty); `undefined` for any other shape (go-libp2p observedaddrs
 * `thinWaistForm`).
 */
export const splitThinWaist = (
  ma: Multiaddr.Multiaddr
): { readonly thinWaist: Multiaddr.Multiaddr; readonly rest: Multiaddr.Multiaddr } | undefined => {
  const [a, b] = Multiaddr.components(ma)
  if (a === undefined || b === undefined) return undefined
  if (a.code !== Multiaddr.codes.ip4 && a.code !== Multiaddr.codes.ip6) return undefined
  if (b.code !== Multiaddr.codes.tcp && b.code !== Multiaddr.codes.udp) return undefined
  // ip4, ip6, tcp and udp values have fixed sizes: no length prefix
  const head = Varint.encodingLength(a.code) + a.bytes!.length + Varint.encodingLength(b.code) + b.bytes!.length
  const bytes = Multiaddr.toBytes(ma)
  const waist = Multiaddr.fromBytes(bytes.subarray(0, head))
  const rest = head === bytes.length ? Result.succeed(Multiaddr.empty) : Multiaddr.fromBytes(bytes.subarray(head))
  if (Result.isFailure(waist)) return undefined
  return Result.isFailure(rest) ? undefined : { thinWaist: waist.success, rest: rest.success }
}

/**
 * The concrete addresses a listener bound to a wildcard (`0.0.0.0` / `::`)
 * is reachable on: one per interface address of the same family (IPv6
 * link-local addresses with their zone). Any other address is returned as is.
 */
export const interfaceAddrs = (
  addr: Multiaddr.Multiaddr
): Effect.Effect<ReadonlyArray<Multiaddr.Multiaddr>> =>
  Effect.sync(() => {
    if (!Multiaddr.isUnspecified(addr)) return [addr]
    const na = Multiaddr.toNodeAddress(addr)
    if (Result.isFailure(na)) return [addr]
    const rest = addr.components.slice(2)
    const family = na.success.family === 4 ? "IPv4" : "IPv6"
    const out: Array<Multiaddr.Multiaddr> = []
    let interfaces: ReturnType<typeof Os.networkInterfaces>
    try {
      interfaces = Os.networkInterfaces()
    } catch {
      return [addr]
    }
    for (const [name, infos] of Object.entries(interfaces)) {
      for (const info of infos ?? []) {
        if (info.family !== family) continue
        const host = family === "IPv6" && info.scopeid !== undefined && info.scopeid !== 0
          ? `${info.address}%${name}`
          : info.address
        const base = Multiaddr.fromNodeAddress({
          family: na.success.family,
          host,
          port: na.success.port,
          transport: "tcp"
        })
        if (Result.isFailure(base)) continue
        let full = base.success
        for (const c of rest) {
          const next = Multiaddr.encapsulate(full, `/${c.name}${c.value === undefined ? "" : `/${c.value}`}`)
          if (Result.isFailure(next)) break
          full = next.success
        }
        out.push(full)
      }
    }
    return out
  })
