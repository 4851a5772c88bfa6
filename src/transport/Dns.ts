/**
 * DNS name resolution for multiaddrs: the libp2p addressing spec §IP and Name
 * Resolution (`/dns`, `/dns4`, `/dns6`) and §dnsaddr Links, with the dnsaddr
 * format of multiaddr protocols/DNSADDR.md.
 *
 * - {@link Resolver} is the service that talks to DNS: `resolve4` (A),
 *   `resolve6` (AAAA), `resolveTxt` (TXT, each record's character-strings
 *   joined). {@link layerNode} runs on `node:dns/promises`; {@link layerTable}
 *   answers from a fixed table (tests, offline use).
 * - {@link resolveMultiaddr} resolves a multiaddr whose first component is
 *   name-based; anything else comes back unchanged:
 *   - `/dns4/<name>/<rest>` → `/ip4/<a>/<rest>` for each A record,
 *     `/dns6` → `/ip6/<aaaa>/<rest>` for each AAAA record, `/dns` → both, the
 *     IPv6 addresses first ("IPv6 will be preferred").
 *   - `/dnsaddr/<name>/<rest>` → the TXT records at `_dnsaddr.<name>` of the
 *     form `dnsaddr=<multiaddr>` (surrounding whitespace ignored); a record
 *     that does not have that form or does not parse is ignored. When `<rest>`
 *     is not empty, only records that end with `<rest>` are kept (go-multiaddr-
 *     dns's rule; for `/dnsaddr/<name>/p2p/<id>` that keeps the records of
 *     peer `<id>`). Each kept record is resolved in turn ("Recursive lookups
 *     are allowed"), so a record may be another `/dnsaddr` or a `/dns*` name.
 *
 * Limits, so a hostile or broken zone cannot make a resolution unbounded
 * (defaults; each can be set per call in {@link ResolveOptions}):
 * - `maxLookups` 32: DNS queries per resolution (A, AAAA and TXT each count
 *   one), as js-libp2p's recursion bound;
 * - `maxDepth` 8: nested `/dnsaddr` levels (the top-level name is level 1);
 * - `maxResults` 64: addresses returned; the resolution stops once it has them.
 * A `/dnsaddr` name that is already being resolved further up the chain
 * (`a → b → a`) is a loop: that branch ends with a `Loop` error instead of
 * recursing.
 *
 * Failures are per branch: a lookup that fails (no such name, no records,
 * timeout, a loop, a limit) drops only its branch. The resolution succeeds
 * with whatever addresses the other branches gave (in record order, without
 * duplicates); when there are none and some branch failed, it fails with the
 * first {@link DnsError}. No addresses and no failure (e.g. only unusable TXT
 * records) is an empty success.
 *
 * Records are resolved one after another, not concurrently, so results and
 * limits are deterministic.
 *
 * This module sits in `transport/` rather than `core/`: `core/` holds pure
 * data types and codecs, and this is network I/O used when dialing.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Option, Result, Schema } from "effect"
import * as NodeDns from "node:dns/promises"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as Varint from "../core/Varint.ts"
import { errorCode, errorMessage } from "../internal/errors.ts"

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/**
 * Why a lookup or a resolution failed.
 * - `NotFound`: the name does not exist (NXDOMAIN).
 * - `NoData`: the name exists but has no records of that type.
 * - `Timeout`: no answer in time (or a temporary failure).
 * - `ServerFailure`: the server failed or refused the query.
 * - `InvalidName`: the name or the query was malformed.
 * - `Loop`: a `/dnsaddr` chain came back to a name it was resolving.
 * - `LimitExceeded`: the lookup budget or the nesting depth ran out.
 * - `Io`: anything else.
 */
export const DnsErrorReason = Schema.Literals([
  "NotFound",
  "NoData",
  "Timeout",
  "ServerFailure",
  "InvalidName",
  "Loop",
  "LimitExceeded",
  "Io"
])
export type DnsErrorReason = typeof DnsErrorReason.Type

export class DnsError extends Schema.TaggedError<DnsError>()("DnsError", {
  reason: DnsErrorReason,
  /** The DNS name (or multiaddr) concerned. */
  name: Schema.String,
  message: Schema.String,
  /** The resolver's own error (a `node:dns` error with its `code`), when there was one. */
  cause: Schema.optional(Schema.Defect())
}) {}

// ---------------------------------------------------------------------------
// The Resolver service
// ---------------------------------------------------------------------------

export interface ResolverService {
  /** IPv4 addresses (A records) of `name`, as dotted-decimal strings. */
  readonly resolve4: (name: string) => Effect.Effect<ReadonlyArray<string>, DnsError>
  /** IPv6 addresses (AAAA records) of `name`. */
  readonly resolve6: (name: string) => Effect.Effect<ReadonlyArray<string>, DnsError>
  /** TXT records of `name`, each record's character-strings joined into one string. */
  readonly resolveTxt: (name: string) => Effect.Effect<ReadonlyArray<string>, DnsError>
}

export class Resolver extends Context.Service<Resolver, ResolverService>()("effect-libp2p/Dns/Resolver") {}

const REASONS: ReadonlyMap<string, DnsErrorReason> = new Map<string, DnsErrorReason>([
  ["ENOTFOUND", "NotFound"],
  ["EAI_NONAME", "NotFound"],
  ["ENODATA", "NoData"],
  ["EAI_NODATA", "NoData"],
  ["ETIMEOUT", "Timeout"],
  ["ETIMEDOUT", "Timeout"],
  ["EAI_AGAIN", "Timeout"],
  ["ESERVFAIL", "ServerFailure"],
  ["EREFUSED", "ServerFailure"],
  ["ECONNREFUSED", "ServerFailure"],
  ["EBADNAME", "InvalidName"],
  ["EFORMERR", "InvalidName"],
  ["EBADQUERY", "InvalidName"],
  ["EBADRESP", "Io"]
])

/** A `node:dns` failure as a DnsError. */
export const fromNodeError = (name: string, query: string, err: unknown): DnsError => {
  const code = errorCode(err)
  return new DnsError({
    reason: (code !== undefined ? REASONS.get(code) : undefined) ?? "Io",
    name,
    message: `dns: ${query} ${name}: ${errorMessage(err)}`,
    cause: err
  })
}

export interface NodeResolverOptions {
  /** Deadline for one query (default 5 seconds). */
  readonly timeout?: Duration.Input
}

/**
 * A Resolver on `node:dns/promises`. A and AAAA go through `lookup`
 * (getaddrinfo: the system's resolver, including the hosts file, so
 * `/dns4/localhost` resolves as it does for a TCP dial); TXT through
 * `resolveTxt` (the configured DNS servers; getaddrinfo has no TXT).
 */
export const makeNode = (options: NodeResolverOptions = {}): ResolverService => {
  const timeout = options.timeout ?? Duration.seconds(5)
  const query = <A>(kind: string, name: string, run: () => Promise<A>): Effect.Effect<A, DnsError> =>
    Effect.tryPromise({ try: run, catch: (err) => fromNodeError(name, kind, err) }).pipe(
      Effect.timeoutOrElse({
        duration: timeout,
        orElse: () =>
          Effect.fail(
            new DnsError({
              reason: "Timeout",
              name,
              message: `dns: ${kind} ${name}: no answer within ${Duration.format(Duration.fromInputUnsafe(timeout))}`
            })
          )
      })
    )
  const lookup = (family: 4 | 6) => (name: string) =>
    query(family === 4 ? "A" : "AAAA", name, () => NodeDns.lookup(name, { family, all: true })).pipe(
      Effect.map((addrs) => addrs.filter((a) => a.family === family).map((a) => a.address))
    )
  return {
    resolve4: lookup(4),
    resolve6: lookup(6),
    resolveTxt: (name) =>
      query("TXT", name, () => NodeDns.resolveTxt(name)).pipe(Effect.map((records) => records.map((r) => r.join(""))))
  }
}

/** The Resolver on `node:dns/promises` (see {@link makeNode}). */
export const layerNode = (options: NodeResolverOptions = {}): Layer.Layer<Resolver> =>
  Layer.succeed(Resolver, makeNode(options))

/** Records by name (case-insensitive, a trailing dot ignored); a name absent from every table is NotFound. */
export interface Table {
  readonly A?: Readonly<Record<string, ReadonlyArray<string>>>
  readonly AAAA?: Readonly<Record<string, ReadonlyArray<string>>>
  readonly TXT?: Readonly<Record<string, ReadonlyArray<string>>>
  /** Names whose every query fails with this reason (e.g. "Timeout"). */
  readonly failures?: Readonly<Record<string, DnsErrorReason>>
}

/** DNS names compare case-insensitively; `example.com.` is `example.com`. */
export const normalizeName = (name: string): string => {
  const lower = name.toLowerCase()
  return lower.endsWith(".") ? lower.slice(0, -1) : lower
}

/** A Resolver that answers from `table` (no network). */
export const fromTable = (table: Table): ResolverService => {
  const index = (records: Readonly<Record<string, ReadonlyArray<string>>> | undefined) =>
    new Map(Object.entries(records ?? {}).map(([k, v]) => [normalizeName(k), v] as const))
  const a = index(table.A)
  const aaaa = index(table.AAAA)
  const txt = index(table.TXT)
  const failures = new Map(Object.entries(table.failures ?? {}).map(([k, v]) => [normalizeName(k), v] as const))
  const known = (n: string) => a.has(n) || aaaa.has(n) || txt.has(n)
  const answer = (kind: string, records: ReadonlyMap<string, ReadonlyArray<string>>) => (name: string) =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<string>, DnsError> => {
      const n = normalizeName(name)
      const failure = failures.get(n)
      if (failure !== undefined) {
        return Effect.fail(new DnsError({ reason: failure, name, message: `dns: ${kind} ${name}: ${failure}` }))
      }
      const found = records.get(n)
      if (found !== undefined) return Effect.succeed(found)
      return Effect.fail(
        known(n)
          ? new DnsError({ reason: "NoData", name, message: `dns: ${kind} ${name}: no ${kind} records` })
          : new DnsError({ reason: "NotFound", name, message: `dns: ${kind} ${name}: no such name` })
      )
    })
  return { resolve4: answer("A", a), resolve6: answer("AAAA", aaaa), resolveTxt: answer("TXT", txt) }
}

/** A Resolver layer answering from `table` (see {@link fromTable}). */
export const layerTable = (table: Table): Layer.Layer<Resolver> => Layer.succeed(Resolver, fromTable(table))

// ---------------------------------------------------------------------------
// Multiaddr resolution
// ---------------------------------------------------------------------------

export interface ResolveOptions {
  /** DNS queries per resolution (default {@link MAX_LOOKUPS}). */
  readonly maxLookups?: number
  /** Nested `/dnsaddr` levels (default {@link MAX_DEPTH}). */
  readonly maxDepth?: number
  /** Addresses returned at most (default {@link MAX_RESULTS}). */
  readonly maxResults?: number
  /**
   * Also resolve `/dns`, `/dns4`, `/dns6` to IP addresses (default true).
   * With false only `/dnsaddr` is expanded and `/dns*` addresses are returned
   * as they are — for transports that resolve names themselves or need the
   * name (TLS server name, WebSocket Host).
   */
  readonly dns?: boolean
}

export const MAX_LOOKUPS = 32
export const MAX_DEPTH = 8
export const MAX_RESULTS = 64

const { dns, dns4, dns6, dnsaddr, ip4, ip6 } = Multiaddr.codes

/** The TXT record prefix of a dnsaddr link (DNSADDR.md). */
export const TXT_PREFIX = "dnsaddr="

/** True when the first component is `/dns`, `/dns4`, `/dns6` or `/dnsaddr`. */
export const isResolvable = (addr: Multiaddr.Multiaddr): boolean => {
  const code = addr.components[0]?.code
  return code === dns || code === dns4 || code === dns6 || code === dnsaddr
}

/** The multiaddr of a `dnsaddr=<multiaddr>` TXT record, or undefined for any other record. */
export const parseTxtRecord = (record: string): Multiaddr.Multiaddr | undefined => {
  const text = record.trim()
  if (!text.startsWith(TXT_PREFIX)) return undefined
  const parsed = Multiaddr.fromString(text.slice(TXT_PREFIX.length).trim())
  return Result.isSuccess(parsed) ? parsed.success : undefined
}

/** `addr` without its first component (a slice of its binary form). */
const dropFirst = (addr: Multiaddr.Multiaddr): Multiaddr.Multiaddr => {
  const first = addr.components[0]
  if (first === undefined) return addr
  const size = Option.match(Multiaddr.protocolByCode(first.code), { onNone: () => 0, onSome: (p) => p.size })
  const valueLength = first.bytes?.length ?? 0
  const length = Varint.encodingLength(first.code) + (size < 0 ? Varint.encodingLength(valueLength) : 0) + valueLength
  const bytes = Multiaddr.toBytes(addr)
  if (length >= bytes.length) return Multiaddr.empty
  const rest = Multiaddr.fromBytes(bytes.subarray(length))
  return Result.isSuccess(rest) ? rest.success : Multiaddr.empty
}

/** Whether the last components of `addr` are exactly `suffix` (binary equality per component). */
const endsWith = (addr: Multiaddr.Multiaddr, suffix: Multiaddr.Multiaddr): boolean => {
  const a = addr.components
  const s = suffix.components
  if (s.length > a.length) return false
  const off = a.length - s.length
  for (let i = 0; i < s.length; i++) {
    const x = a[off + i]!
    const y = s[i]!
    if (x.code !== y.code || (x.bytes === undefined) !== (y.bytes === undefined)) return false
    if (x.bytes !== undefined && y.bytes !== undefined) {
      if (x.bytes.length !== y.bytes.length || x.bytes.some((b, j) => b !== y.bytes![j])) return false
    }
  }
  return true
}

/**
 * Resolve a multiaddr (see the module doc): its `/dnsaddr` links and, unless
 * `options.dns` is false, its `/dns*` names. An address that does not start
 * with a name comes back as the only result.
 */
export const resolveMultiaddr = (
  addr: Multiaddr.Multiaddr,
  options: ResolveOptions = {}
): Effect.Effect<ReadonlyArray<Multiaddr.Multiaddr>, DnsError, Resolver> =>
  Effect.gen(function*() {
    const resolver = yield* Resolver
    const maxLookups = options.maxLookups ?? MAX_LOOKUPS
    const maxDepth = options.maxDepth ?? MAX_DEPTH
    const maxResults = options.maxResults ?? MAX_RESULTS
    const resolveNames = options.dns ?? true

    let lookups = 0
    const results: Array<Multiaddr.Multiaddr> = []
    const seen = new Set<string>()
    const errors: Array<DnsError> = []
    const full = () => results.length >= maxResults

    const emit = (a: Multiaddr.Multiaddr) => {
      if (full()) return
      const key = a.toString()
      if (seen.has(key)) return
      seen.add(key)
      results.push(a)
    }

    /** Run one DNS query within the budget; a failure is recorded and read as "no records". */
    const query = (
      name: string,
      run: (name: string) => Effect.Effect<ReadonlyArray<string>, DnsError>
    ): Effect.Effect<ReadonlyArray<string>> =>
      Effect.suspend(() => {
        if (lookups >= maxLookups) {
          errors.push(
            new DnsError({
              reason: "LimitExceeded",
              name,
              message: `dns: ${addr.toString()}: more than ${maxLookups} lookups needed (at ${name})`
            })
          )
          return Effect.succeed([])
        }
        lookups++
        return run(name).pipe(
          Effect.catch((err: DnsError) => Effect.sync(() => errors.push(err)).pipe(Effect.as([])))
        )
      })

    const withIps = (
      family: 4 | 6,
      ips: ReadonlyArray<string>,
      rest: Multiaddr.Multiaddr
    ) => {
      for (const ip of ips) {
        const base = Multiaddr.fromString(`/${family === 4 ? "ip4" : "ip6"}/${ip}`)
        // an answer that is not an address of the family asked for is ignored
        if (Result.isFailure(base) || base.success.components[0]!.code !== (family === 4 ? ip4 : ip6)) continue
        emit(Multiaddr.encapsulate(base.success, rest))
      }
    }

    const resolve = (
      a: Multiaddr.Multiaddr,
      chain: ReadonlyArray<string>
    ): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (full()) return
        const first = a.components[0]
        if (first === undefined || first.value === undefined) return emit(a)
        const rest = dropFirst(a)
        if (first.code === dnsaddr) {
          const name = normalizeName(first.value)
          if (chain.includes(name)) {
            errors.push(
              new DnsError({
                reason: "Loop",
                name,
                message: `dns: ${addr.toString()}: dnsaddr loop ${[...chain, name].join(" → ")}`
              })
            )
            return
          }
          if (chain.length >= maxDepth) {
            errors.push(
              new DnsError({
                reason: "LimitExceeded",
                name,
                message: `dns: ${addr.toString()}: dnsaddr links nested deeper than ${maxDepth} (at ${name})`
              })
            )
            return
          }
          const records = yield* query(`_dnsaddr.${name}`, resolver.resolveTxt)
          for (const record of records) {
            if (full()) return
            const target = parseTxtRecord(record)
            if (target === undefined) continue
            if (rest.components.length > 0 && !endsWith(target, rest)) continue
            yield* resolve(target, [...chain, name])
          }
          return
        }
        if (!resolveNames || (first.code !== dns && first.code !== dns4 && first.code !== dns6)) return emit(a)
        // `/dns`: both families, IPv6 first (addressing spec: "IPv6 will be preferred")
        if (first.code === dns6 || first.code === dns) withIps(6, yield* query(first.value, resolver.resolve6), rest)
        if (first.code === dns4 || first.code === dns) withIps(4, yield* query(first.value, resolver.resolve4), rest)
      })

    yield* resolve(addr, [])
    if (results.length === 0 && errors.length > 0) return yield* errors[0]!
    return results
  })
