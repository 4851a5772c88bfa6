/** Multiaddr literals in tests: `ma("/ip4/127.0.0.1/tcp/0")` (throws on a typo in the test itself). */
import { Result } from "effect"
import * as Multiaddr from "../../src/core/Multiaddr.ts"

export const ma = (s: string): Multiaddr.Multiaddr => Result.getOrThrow(Multiaddr.fromString(s))

/** An address without its trailing `/p2p/<id>`, as a string. */
export const bare = (a: Multiaddr.Multiaddr): string =>
  Multiaddr.toString(Multiaddr.decapsulateCode(a, Multiaddr.codes.p2p))

/** The same for an address already in string form. */
export const bareText = (a: string): string => a.replace(/\/p2p\/[^/]+$/, "")
