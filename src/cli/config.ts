/**
 * The node's configuration file, `<data dir>/config.json` (docs/CLI.md): the
 * schema, its check, and the effective configuration (defaults, then the
 * file, then the flags) that `node --print-config` prints.
 *
 * Every key is optional. An unknown key, a value of the wrong type, or a file
 * that is not JSON is a `ConfigError` naming the file, the key and what was
 * expected; the file is never rewritten. A missing file is created on the
 * first start with the defaults of the sections an operator edits most
 * (`listen`, `bootstrap`, `security`, `muxers`), and never touched after.
 *
 * `dht`, `pubsub` and `http` are reserved for the features that add them:
 * any object is accepted there today and printed back as given.
 *
 * @since 0.2.0
 */
import { Effect, FileSystem, Schema } from "effect"
import * as Multiaddr from "../core/Multiaddr.ts"
import { parseDuration } from "./flags.ts"

const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const Section = Schema.Record(Schema.String, Schema.Unknown)

/** The shape of `config.json`. */
export const ConfigFile = Schema.Struct({
  /** Multiaddrs to listen on. */
  listen: Schema.optional(Schema.Array(Schema.String)),
  /** Multiaddrs (ending in `/p2p/<peer id>`) dialed at every start. */
  bootstrap: Schema.optional(Schema.Array(Schema.String)),
  /** Secure channels in preference order. */
  security: Schema.optional(Schema.Array(Schema.Literals(["noise", "tls"]))),
  /** Stream muxers in preference order. */
  muxers: Schema.optional(Schema.Array(Schema.Literals(["yamux", "mplex"]))),
  connectionManager: Schema.optional(Schema.Struct({
    maxConnections: Schema.optional(NonNegativeInt),
    lowWater: Schema.optional(NonNegativeInt),
    highWater: Schema.optional(NonNegativeInt),
    /** A duration: `30s`, `500ms`, `1m`. */
    gracePeriod: Schema.optional(Schema.String)
  })),
  /** Known peers redialed at start (the most recently seen first); 0: none. */
  reconnect: Schema.optional(NonNegativeInt),
  peerstore: Schema.optional(Schema.Struct({
    maxPeers: Schema.optional(PositiveInt)
  })),
  /** LAN discovery with mDNS (as `--mdns`). */
  mdns: Schema.optional(Schema.Boolean),
  dht: Schema.optional(Section),
  pubsub: Schema.optional(Section),
  http: Schema.optional(Section)
})
export type ConfigFile = typeof ConfigFile.Type

/** `config.json` cannot be read, is not JSON, or does not match the schema (exit code 1). */
export class ConfigError extends Schema.TaggedError<ConfigError>()("ConfigError", {
  file: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect())
}) {}

/** What `--reconnect` is without the flag or the key. */
export const DEFAULT_RECONNECT = 16

/** What a new `config.json` holds. */
export const initial = (listen: ReadonlyArray<string>): ConfigFile => ({
  listen,
  bootstrap: [],
  security: ["noise"],
  muxers: ["yamux"]
})

const decode = Schema.decodeUnknownResult(ConfigFile, { onExcessProperty: "error" })

/** A schema failure in one line: `listen[0]: expected string`. */
const describeIssue = (message: string): string => {
  const [what = message, where] = message.split("\n  at ")
  const path = where === undefined
    ? "the top level"
    : where.replace(/^\["/, "").replace(/"\]\["/g, ".").replace(/"\]/g, "").replace(/\["/g, ".")
  return what === "Expected no excess property"
    ? `unknown key "${path}" (known keys: ${Object.keys(ConfigFile.fields).join(", ")} and their fields)`
    : `${path}: ${what.charAt(0).toLowerCase()}${what.slice(1)}`
}

/** Check the text of a config file. */
export const parse = (file: string, text: string): Effect.Effect<ConfigFile, ConfigError> =>
  Effect.suspend(() => {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch (cause) {
      return Effect.fail(
        new ConfigError({
          file,
          message: `config file ${file} is not JSON (${cause instanceof Error ? cause.message : String(cause)}); ` +
            "it was left as it is",
          cause
        })
      )
    }
    const r = decode(json)
    if (r._tag === "Failure") {
      return Effect.fail(
        new ConfigError({ file, message: `config file ${file}: ${describeIssue(r.failure.message)}`, cause: r.failure })
      )
    }
    const problem = checkValues(r.success)
    return problem === undefined
      ? Effect.succeed(r.success)
      : Effect.fail(new ConfigError({ file, message: `config file ${file}: ${problem}` }))
  })

/** What the schema cannot say: addresses are multiaddrs, the grace period a duration. */
const checkValues = (c: ConfigFile): string | undefined => {
  for (const key of ["listen", "bootstrap"] as const) {
    for (const [i, text] of (c[key] ?? []).entries()) {
      const r = Multiaddr.fromString(text)
      if (r._tag === "Failure") return `${key}[${i}]: expected a multiaddr, got "${text}" (${r.failure.message})`
    }
  }
  const grace = c.connectionManager?.gracePeriod
  if (grace !== undefined && parseDuration(grace) === undefined) {
    return `connectionManager.gracePeriod: expected a duration (e.g. 30s, 500ms, 1m), got "${grace}"`
  }
  return undefined
}

/** Read and check `file`; `undefined` when it does not exist. */
export const read = (file: string): Effect.Effect<ConfigFile | undefined, ConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const fail = (cause: { readonly message: string }) =>
      new ConfigError({ file, message: `cannot read config file ${file}: ${cause.message}`, cause })
    if (!(yield* Effect.mapError(fs.exists(file), fail))) return undefined
    return yield* parse(file, yield* Effect.mapError(fs.readFileString(file), fail))
  })

/** Read and check `file`; create it with `created` when it does not exist (never overwriting one). */
export const load = (
  file: string,
  created: ConfigFile
): Effect.Effect<ConfigFile, ConfigError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const existing = yield* read(file)
    if (existing !== undefined) return existing
    const fs = yield* FileSystem.FileSystem
    yield* Effect.mapError(
      // "wx": fails if another process created it meanwhile, so nothing is ever overwritten
      fs.writeFileString(file, JSON.stringify(created, null, 2) + "\n", { flag: "wx", mode: 0o644 }),
      (cause) => new ConfigError({ file, message: `cannot create config file ${file}: ${cause.message}`, cause })
    )
    return created
  })
