/**
 * Spam protection for Mix (LIP-99 §9), per-hop generated proofs (§9.2.2): the
 * proof σ is appended after the Sphinx packet (`SphinxPacket || σ`), verified
 * BEFORE any Sphinx processing (§9.3.2) and generated afresh by each hop for
 * the packet it forwards, bound to that packet. The interface is §9.6.2's
 * `GenerateProof(binding_data)` / `VerifyProof(proof, binding_data)` with a
 * fixed proof size (§9.6.1). Sender-generated proofs (§9.2.1) change β's size
 * and are not implemented.
 *
 * `proofOfWork(bits)` is the simple default (§9.5 "PoW style approaches"):
 * σ is an 8-byte nonce such that SHA-256(packet | σ) starts with `bits` zero
 * bits. It is off unless a node's options name it.
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import * as crypto from "node:crypto"

export interface SpamProtection {
  /** |σ| in bytes, the same for every packet of a deployment (§9.6.1). */
  readonly proofSize: number
  readonly generateProof: (binding: Uint8Array) => Effect.Effect<Uint8Array>
  /** False for anything malformed (§9.6.2.2). */
  readonly verifyProof: (proof: Uint8Array, binding: Uint8Array) => Effect.Effect<boolean>
}

const leadingZeroBits = (digest: Uint8Array): number => {
  let n = 0
  for (const byte of digest) {
    if (byte === 0) {
      n += 8
      continue
    }
    return n + Math.clz32(byte) - 24
  }
  return n
}

const work = (binding: Uint8Array, nonce: Uint8Array): number =>
  leadingZeroBits(crypto.createHash("sha256").update(binding).update(nonce).digest())

/** Hashcash-style proof of work over the packet; `bits` ≤ 24 keeps generation well under a second. */
export const proofOfWork = (bits: number): SpamProtection => ({
  proofSize: 8,
  generateProof: (binding) =>
    Effect.sync(() => {
      const nonce = new Uint8Array(8)
      const view = new DataView(nonce.buffer)
      for (let i = 0;; i++) {
        view.setUint32(0, Math.floor(i / 0x1_0000_0000))
        view.setUint32(4, i >>> 0)
        if (work(binding, nonce) >= bits) return nonce
      }
    }),
  verifyProof: (proof, binding) => Effect.sync(() => proof.byteLength === 8 && work(binding, proof) >= bits)
})
