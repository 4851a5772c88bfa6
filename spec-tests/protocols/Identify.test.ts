/**
 * Identify's cache of verified signed peer records (src/protocols/identify/Identify.ts,
 * `VerifiedRecords`): a record that verified once is not checked again; one that
 * does not verify is never kept.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import * as PeerRecord from "../../src/core/PeerRecord.ts"
import { VerifiedRecords } from "../../src/protocols/identify/Identify.ts"
import { ma } from "../support/multiaddr.ts"

const sealed = (key: Keys.PrivateKey, seq: bigint) =>
  Result.getOrThrow(
    PeerRecord.seal(key, PeerRecord.make(PeerId.fromPrivateKey(key), seq, [ma("/ip4/1.2.3.4/tcp/4001")]))
  )

describe("identify spec §identify (signedPeerRecord): verified records are remembered", () => {
  it.effect("the same envelope opens to the same record without a second check; a tampered one fails and is not kept; the oldest entry goes past the capacity", () =>
    Effect.gen(function*() {
      const key = yield* Keys.generate("Ed25519")
      const cache = new VerifiedRecords(2)
      const first = sealed(key, 1n)
      const opened = Result.getOrThrow(cache.open(first))
      expect(opened.seq).toBe(1n)
      expect(Result.getOrThrow(cache.open(Uint8Array.from(first)))).toBe(opened) // the kept record
      const tampered = Uint8Array.from(first)
      tampered[tampered.length - 1]! ^= 1 // the signature's last byte
      expect(Result.isFailure(cache.open(tampered))).toBe(true)
      expect(cache.size).toBe(1)
      cache.open(sealed(key, 2n))
      cache.open(sealed(key, 3n))
      expect(cache.size).toBe(2)
      const reopened = Result.getOrThrow(cache.open(first)) // dropped, so opened (and checked) again
      expect(reopened).not.toBe(opened)
      expect(reopened.seq).toBe(1n)
    }))
})
