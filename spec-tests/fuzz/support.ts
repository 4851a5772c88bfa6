/**
 * What every fuzz target file shares: the `Target` shape, the outcome label
 * of a `Result`, byte helpers and a few keys and addresses to build seeds
 * from. `targets.ts` (core codecs, transports, Kad, pubsub) and
 * `protocols.ts` (relay, AutoNAT, DCUtR, daemon, mDNS, rendezvous, Mix)
 * build on it.
 */
import { Effect, Result } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as Multiaddr from "../../src/core/Multiaddr.ts"

export interface Target {
  readonly name: string
  /** Run the decoder on `input`: the outcome's label. Throws only if the decoder does (a crash). */
  readonly run: (input: Uint8Array) => string
  /** Valid inputs from our encoders (the seed corpus is written from these). */
  readonly seeds: Effect.Effect<ReadonlyArray<Uint8Array>, unknown>
  /** Longest mutated input (the engine's default, 4,096 bytes, when absent). */
  readonly maxLength?: number
}

const field = (u: unknown, key: string): string => {
  const v = typeof u === "object" && u !== null && key in u ? (u as Record<string, unknown>)[key] : ""
  // a reason that is itself a tagged error (AutoNAT's, rendezvous's) is labelled by its tag
  return typeof v === "object" && v !== null && "_tag" in v ? String(v._tag) : String(v)
}

/** The label of a Result: `ok`, or the failure's `_tag/reason`. */
export const label = (r: Result.Result<unknown, unknown>): string =>
  Result.isSuccess(r) ? "ok" : `${field(r.failure, "_tag")}/${field(r.failure, "reason")}`

export const latin1 = (b: Uint8Array) => Buffer.from(b).toString("latin1")
export const utf8 = (b: Uint8Array) => Buffer.from(b).toString("utf8")
export const bytesOf = (s: string) => new Uint8Array(Buffer.from(s, "utf8"))
export const ok = <A>(r: Result.Result<A, unknown>): A => Result.getOrThrow(r as Result.Result<A, never>)

export const ed25519 = Keys.generate("Ed25519")
export const secp = Keys.generate("Secp256k1")
export const ecdsa = Keys.generate("ECDSA")
/** An Ed25519 key from a seed of 32 × `n`: the same key in every run (seeds stay valid for it). */
export const fixedEd25519 = (n: number): Keys.PrivateKey => ok(Keys.ed25519FromSeed(new Uint8Array(32).fill(n)))

export const addrs = [
  "/ip4/1.2.3.4/tcp/4001",
  "/ip6/::1/udp/4001/quic-v1",
  "/dns4/example.com/tcp/443/wss",
  "/ip4/127.0.0.1/tcp/1/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
  "/memory/42",
  "/unix/%2Ftmp%2Fsock"
]
export const someAddrs = addrs.map((a) => ok(Multiaddr.fromString(a)))
