/**
 * Flags shared by the commands (ARCHITECTURE.md §7, docs/CLI.md) and their
 * checks at the edge: `--json`, the stack flags every command that makes
 * connections takes (`--security`, `--muxer`, the connection manager's
 * limits), multiaddr arguments. A bad value is a `UsageError` (exit code 2).
 *
 * @since 0.1.0
 */
import { Duration, Effect, Option, Result } from "effect"
import { Argument, Flag } from "effect/cli"
import * as Nodes from "../../layers/Node.ts"
import type * as ConnectionManager from "../connection/ConnectionManager.ts"
import * as Multiaddr from "../core/Multiaddr.ts"
import * as PeerId from "../core/PeerId.ts"
import { UsageError, warn } from "./output.ts"

export const json = Flag.Boolean("json").pipe(
  Flag.withDescription("one JSON object per line on stdout (logs, warnings and help go to stderr)"),
  Flag.withDefault(false)
)

/** A count flag's check: a negative value is a usage error. */
export const nonNegative = Flag.filter((n: number) => n >= 0, () => "an integer >= 0")

/** The flags of every command that makes connections: secure channels, muxers, connection limits. */
export const stackFlags = {
  security: Flag.String("security").pipe(
    Flag.withDescription(
      "secure channels in preference order: noise, tls, plaintext (tests only); e.g. noise,tls; default noise"
    ),
    Flag.optional
  ),
  muxer: Flag.String("muxer").pipe(
    Flag.withDescription("stream muxers in preference order: yamux, mplex (e.g. yamux,mplex; default yamux)"),
    Flag.optional
  ),
  maxConnections: Flag.Int("max-connections").pipe(
    nonNegative,
    Flag.withDescription("hard cap on connections, handshaking ones included (default 300)"),
    Flag.optional
  ),
  connLow: Flag.Int("conn-low").pipe(
    nonNegative,
    Flag.withDescription("trimming closes connections down to this many (default 160)"),
    Flag.optional
  ),
  connHigh: Flag.Int("conn-high").pipe(
    nonNegative,
    Flag.withDescription("trimming starts above this many connections (default 192)"),
    Flag.optional
  ),
  connGrace: Flag.String("conn-grace").pipe(
    Flag.withDescription("new connections are not trimmed for this long, e.g. 30s, 500ms, 1m (default 1m)"),
    Flag.optional
  )
}

export interface StackFlags {
  /** Absent: `noise` (or, for `node`, the config file's). */
  readonly security: Option.Option<string>
  /** Absent: `yamux` (or, for `node`, the config file's). */
  readonly muxer: Option.Option<string>
  readonly maxConnections: Option.Option<number>
  readonly connLow: Option.Option<number>
  readonly connHigh: Option.Option<number>
  readonly connGrace: Option.Option<string>
}

/** The target of `ping`, `identify` and `perf`. */
export const peerAddress = Argument.String("multiaddr").pipe(
  Argument.withDescription("address ending in /p2p/<peer id>")
)

const parseList = <A extends string>(flag: string, value: string, known: ReadonlyArray<A>) =>
  Effect.gen(function*() {
    const names = value.split(",").map((x) => x.trim()).filter((x) => x.length > 0)
    if (names.length === 0) return yield* new UsageError({ message: `${flag}: empty list` })
    const out: Array<A> = []
    for (const name of names) {
      const found = known.find((k) => k === name)
      if (found === undefined) {
        return yield* new UsageError({ message: `${flag}: unknown "${name}" (known: ${known.join(", ")})` })
      }
      if (!out.includes(found)) out.push(found)
    }
    return out
  })

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `500ms`, `1s`, `1.5s`, `2m`, `1h`, or an Effect duration (`1 second`). */
export const parseDuration = (text: string): Duration.Duration | undefined => {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(text)
  if (m !== null) return Duration.millis(Number(m[1]) * UNITS[m[2]!]!)
  const d = Duration.fromInput(text as Duration.Input)
  return d._tag === "Some" ? d.value : undefined
}

/**
 * The connection manager's options from `--max-connections`, `--conn-low`,
 * `--conn-high`, `--conn-grace` (ARCHITECTURE.md §7), checked at the edge:
 * counts are non-negative integers (checked by the flags), the grace period a
 * duration, and `conn-low ≤ conn-high` where both are given (a watermark above
 * `--max-connections` is lowered to it, as the ConnectionManager does).
 */
export const connectionManagerOptions = (flags: StackFlags) =>
  Effect.gen(function*() {
    const max = Option.getOrUndefined(flags.maxConnections)
    const low = Option.getOrUndefined(flags.connLow)
    const high = Option.getOrUndefined(flags.connHigh)
    let grace: Duration.Duration | undefined
    if (Option.isSome(flags.connGrace)) {
      grace = parseDuration(flags.connGrace.value)
      if (grace === undefined) {
        return yield* new UsageError({
          message: `--conn-grace: not a duration: "${flags.connGrace.value}" (e.g. 30s, 500ms, 1m)`
        })
      }
    }
    if (low !== undefined && high !== undefined && low > high) {
      return yield* new UsageError({ message: `--conn-low (${low}) must not exceed --conn-high (${high})` })
    }
    if ((high ?? 0) > (max ?? Infinity) || (low ?? 0) > (max ?? Infinity)) {
      yield* warn(`watermarks above --max-connections (${max}) are lowered to it`)
    }
    const options: ConnectionManager.ConnectionManagerOptions = {
      ...(max !== undefined ? { maxConnections: max } : {}),
      ...(low !== undefined ? { lowWater: low } : {}),
      ...(high !== undefined ? { highWater: high } : {}),
      ...(grace !== undefined ? { gracePeriod: grace } : {})
    }
    return options
  })

/**
 * The preset options named by the stack flags: `--security` and `--muxer` in
 * the preference order given (unknown names are usage errors) and the
 * connection manager's limits.
 */
export const stackOptions = (flags: StackFlags) =>
  Effect.gen(function*() {
    const options: Nodes.PresetOptions = {
      security: yield* parseList("--security", Option.getOrElse(flags.security, () => "noise"), Nodes.securityNames),
      muxers: yield* parseList("--muxer", Option.getOrElse(flags.muxer, () => "yamux"), Nodes.muxerNames),
      connectionManager: yield* connectionManagerOptions(flags)
    }
    return options
  })

export const parseMultiaddr = (text: string) =>
  Effect.mapError(
    Effect.fromResult(Multiaddr.fromString(text)),
    (e) => new UsageError({ message: `bad multiaddr "${text}": ${e.message}` })
  )

/** The peer id a `ping`/`identify`/`perf` address ends in. */
export const targetPeer = (addr: Multiaddr.Multiaddr) =>
  Effect.gen(function*() {
    const id = Multiaddr.getPeerId(addr)
    if (id === undefined) return yield* new UsageError({ message: "the address must end in /p2p/<peer id>" })
    const peer = PeerId.fromString(id)
    if (Result.isFailure(peer)) return yield* new UsageError({ message: peer.failure.message })
    return peer.success
  })

/** `--http <multiaddr>`, `--http-public` (the status server, docs/ARCHITECTURE.md §7) and `--otlp <url>` (traces). */
export const observabilityFlags = {
  http: Flag.String("http").pipe(
    Flag.withDescription(
      "serve GET /metrics (Prometheus), /api/status (JSON) and / (status page) on this address, e.g. /ip4/127.0.0.1/tcp/0"
    ),
    Flag.optional
  ),
  httpPublic: Flag.Boolean("http-public").pipe(
    Flag.withDescription("allow --http on a non-loopback address (anyone who can reach it sees the node's status)"),
    Flag.withDefault(false)
  ),
  otlp: Flag.String("otlp").pipe(
    Flag.withDescription(
      "export traces (dials, upgrades, inbound streams) to this OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (off by default)"
    ),
    Flag.optional
  )
}

/** `--otlp <url>`: an http(s) URL, or a usage error. */
export const otlpOption = (otlp: Option.Option<string>) =>
  Effect.gen(function*() {
    if (Option.isNone(otlp)) return undefined
    const url = URL.parse(otlp.value)
    if (url === null || (url.protocol !== "http:" && url.protocol !== "https:")) {
      return yield* new UsageError({ message: `--otlp takes an http(s) URL, not "${otlp.value}"` })
    }
    return otlp.value
  })

/** The status server's options from {@link observabilityFlags}; `--http-public` alone is a usage error. */
export const httpOptions = (flags: { readonly http: Option.Option<string>; readonly httpPublic: boolean }) =>
  Effect.gen(function*() {
    if (Option.isNone(flags.http)) {
      if (flags.httpPublic) return yield* new UsageError({ message: "--http-public needs --http <multiaddr>" })
      return undefined
    }
    const listen = yield* parseMultiaddr(flags.http.value)
    if (!flags.httpPublic && !Multiaddr.isLoopback(listen)) {
      return yield* new UsageError({
        message: `--http ${flags.http.value} is not a loopback address; add --http-public to serve the status publicly`
      })
    }
    return { listen, public: flags.httpPublic }
  })

/**
 * The addresses a node advertises (`node`): `--announce` (repeatable: these replace the advertised
 * addresses), `--no-announce` (repeatable: advertised addresses that start with one are left out),
 * `--autonat` (run AutoNAT v2: confirm our addresses with other peers, serve their checks).
 */
export const addressFlags = {
  announce: Flag.String("announce").pipe(
    Flag.withDescription("advertise this multiaddr instead of the listen and observed addresses (repeatable)"),
    Flag.atLeast(0)
  ),
  noAnnounce: Flag.String("no-announce").pipe(
    Flag.withDescription(
      "never advertise addresses that start with this multiaddr, e.g. /ip4/10.0.0.1 or /ip4/10.0.0.1/tcp/4001 (repeatable)"
    ),
    Flag.atLeast(0)
  ),
  autonat: Flag.Boolean("autonat").pipe(
    Flag.withDescription(
      "run AutoNAT v2 (and a v1 server): check which of our addresses others can dial, advertise observed addresses only once confirmed, answer others' checks"
    ),
    Flag.withDefault(false)
  ),
  publicCidr: Flag.String("public-cidr").pipe(
    Flag.withDescription(
      "count addresses in this network as public (repeatable; for test networks on documentation or private ranges): AutoNAT, observed addresses, DCUtR"
    ),
    Flag.atLeast(0)
  )
}

export interface AddressFlags {
  readonly announce: ReadonlyArray<string>
  readonly noAnnounce: ReadonlyArray<string>
  readonly autonat: boolean
  readonly publicCidr: ReadonlyArray<string>
}
