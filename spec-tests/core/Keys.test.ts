import { describe, expect, it } from "@effect/vitest"
import { secp256k1 } from "@noble/curves/secp256k1.js"
import { Effect, Result } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import { failureReason, ok } from "../support/result.ts"
import { fromHex, readJson, toHex } from "../support/vectors.ts"

// ---------------------------------------------------------------------------
// vector shapes

interface KeyVector {
  readonly key_type: string
  readonly key_type_enum: number
  readonly private_key_protobuf_hex: string
  readonly public_key_protobuf_hex: string
}
const peerIds = readJson<{ readonly key_vectors: ReadonlyArray<KeyVector> }>("libp2p-specs/peer-ids.json")

interface Fixture {
  readonly name: string
  readonly key_type_enum: number
  readonly private_key_protobuf_hex?: string
  readonly public_key_protobuf_hex: string
  readonly message_hex?: string
  readonly signature_hex?: string
  readonly signature_deterministic?: boolean
  readonly private_key_data_length?: number
}
const fixtures = readJson<{ readonly fixtures: ReadonlyArray<Fixture> }>("interop/libp2p-key-signature-fixtures.json")

interface Rfc8032Vector {
  readonly name: string
  readonly secret_key: string
  readonly public_key: string
  readonly message: string
  readonly signature: string
}
const rfc8032 = readJson<{ readonly vectors: ReadonlyArray<Rfc8032Vector> }>("crypto/ed25519-rfc8032.json")

interface WycheproofTest {
  readonly tcId: number
  readonly comment: string
  readonly flags: ReadonlyArray<string>
  readonly msg: string
  readonly sig: string
  readonly result: "valid" | "invalid" | "acceptable"
}
interface WycheproofGroup {
  readonly publicKey: { readonly pk?: string; readonly uncompressed?: string }
  readonly publicKeyDer: string
  readonly tests: ReadonlyArray<WycheproofTest>
}
const wycheproof = (file: string) =>
  readJson<{ readonly numberOfTests: number; readonly testGroups: ReadonlyArray<WycheproofGroup> }>(
    `crypto/wycheproof/${file}`
  )

const typeOfEnum = (n: number): Keys.KeyType => Keys.keyTypes[n]!

// ---------------------------------------------------------------------------

describe("peer-ids spec §Keys: protobuf KeyType enum", () => {
  it("RSA = 0, Ed25519 = 1, Secp256k1 = 2, ECDSA = 3", () => {
    expect(Keys.KeyTypeCode).toEqual({ RSA: 0, Ed25519: 1, Secp256k1: 2, ECDSA: 3 })
    for (const t of Keys.keyTypes) expect(Keys.keyTypes[Keys.KeyTypeCode[t]]).toBe(t)
  })
})

describe("peer-ids spec §Test vectors", () => {
  for (const v of peerIds.key_vectors) {
    const type = typeOfEnum(v.key_type_enum)
    it(`${v.key_type}: the private key decodes, re-encodes byte for byte, and produces the listed public key [peer-ids:keys:1] [peer-ids:test-vectors:1]`, () => {
      const privateBytes = fromHex(v.private_key_protobuf_hex.toLowerCase())
      const key = ok(Keys.privateKeyFromProtobuf(privateBytes))
      expect(key.type).toBe(type)
      expect(toHex(Keys.privateKeyToProtobuf(key))).toBe(v.private_key_protobuf_hex.toLowerCase())
      expect(toHex(Keys.publicKeyToProtobuf(key.publicKey))).toBe(v.public_key_protobuf_hex.toLowerCase())
    })
    it(`${v.key_type}: the public key decodes and re-encodes byte for byte; signatures by the private key verify`, () => {
      const publicKey = ok(Keys.publicKeyFromProtobuf(fromHex(v.public_key_protobuf_hex)))
      expect(publicKey.type).toBe(type)
      expect(toHex(Keys.publicKeyToProtobuf(publicKey))).toBe(v.public_key_protobuf_hex.toLowerCase())
      const key = ok(Keys.privateKeyFromProtobuf(fromHex(v.private_key_protobuf_hex)))
      const message = new TextEncoder().encode("peer-ids spec test vector")
      const signature = ok(key.sign(message))
      expect(publicKey.verify(message, signature)).toBe(true)
      expect(publicKey.verify(message.subarray(1), signature)).toBe(false)
    })
  }
})

describe("peer-ids spec §Key Types: go-libp2p and js-libp2p fixtures", () => {
  for (const f of fixtures.fixtures) {
    const type = typeOfEnum(f.key_type_enum)
    if (f.name.includes("RSA-512")) {
      it(`${f.name}: rejected, RSA keys below 2048 bits are refused (go-libp2p's minimum)`, () => {
        expect(failureReason(Keys.publicKeyFromProtobuf(fromHex(f.public_key_protobuf_hex)))).toBe("InvalidPublicKey")
        expect(failureReason(Keys.privateKeyFromProtobuf(fromHex(f.private_key_protobuf_hex!)))).toBe(
          "InvalidPrivateKey"
        )
      })
      continue
    }
    it(`${f.name}: the public key round-trips and ${f.signature_hex !== undefined ? "the signature verifies" : "decodes"}`, () => {
      const publicKey = ok(Keys.publicKeyFromProtobuf(fromHex(f.public_key_protobuf_hex)))
      expect(publicKey.type).toBe(type)
      expect(toHex(Keys.publicKeyToProtobuf(publicKey))).toBe(f.public_key_protobuf_hex)
      if (f.signature_hex !== undefined && f.message_hex !== undefined) {
        const message = fromHex(f.message_hex)
        const signature = fromHex(f.signature_hex)
        expect(publicKey.verify(message, signature)).toBe(true)
        const tampered = Uint8Array.from(signature)
        tampered[tampered.length - 1]! ^= 1
        expect(publicKey.verify(message, tampered)).toBe(false)
        expect(publicKey.verify(Uint8Array.of(...message, 0), signature)).toBe(false)
      }
    })
    if (f.private_key_protobuf_hex !== undefined) {
      it(`${f.name}: the private key yields the public key${f.signature_deterministic === true ? " and the same deterministic signature" : ""}`, () => {
        const key = ok(Keys.privateKeyFromProtobuf(fromHex(f.private_key_protobuf_hex!)))
        expect(toHex(Keys.publicKeyToProtobuf(key.publicKey))).toBe(f.public_key_protobuf_hex)
        if (f.private_key_data_length === 96) {
          // §Ed25519: the legacy seed‖pub‖pub form is read, and written back in the preferred 64-byte form
          expect(key.raw.length).toBe(64)
          expect(toHex(Keys.privateKeyToProtobuf(key))).not.toBe(f.private_key_protobuf_hex)
        } else {
          expect(toHex(Keys.privateKeyToProtobuf(key))).toBe(f.private_key_protobuf_hex)
        }
        if (f.message_hex !== undefined && f.signature_hex !== undefined) {
          const signature = ok(key.sign(fromHex(f.message_hex)))
          if (f.signature_deterministic === true || type === "Ed25519") expect(toHex(signature)).toBe(f.signature_hex)
          expect(key.publicKey.verify(fromHex(f.message_hex), signature)).toBe(true)
        }
      })
    }
  }
})

describe("peer-ids spec §Ed25519: private key encodings", () => {
  const vector = peerIds.key_vectors.find((v) => v.key_type === "Ed25519")!
  const data = ok(Keys.privateKeyFromProtobuf(fromHex(vector.private_key_protobuf_hex))).raw
  it("the legacy 96-byte form with two equal public keys is accepted", () => {
    const legacy = Uint8Array.of(...data, ...data.subarray(32))
    expect(ok(Keys.privateKeyFromRaw("Ed25519", legacy)).raw).toEqual(data)
  })
  it("the legacy 96-byte form with differing public keys is rejected", () => {
    const legacy = Uint8Array.of(...data, ...data.subarray(32))
    legacy[95]! ^= 1
    expect(failureReason(Keys.privateKeyFromRaw("Ed25519", legacy))).toBe("InvalidPrivateKey")
  })
  it("a 64-byte key whose public half is not derived from the seed is rejected", () => {
    const wrong = Uint8Array.from(data)
    wrong[63]! ^= 1
    expect(failureReason(Keys.privateKeyFromRaw("Ed25519", wrong))).toBe("InvalidPrivateKey")
  })
  it("other lengths are rejected", () => {
    for (const n of [0, 32, 63, 65, 95, 97]) {
      expect(failureReason(Keys.privateKeyFromRaw("Ed25519", new Uint8Array(n)))).toBe("InvalidPrivateKey")
    }
    for (const n of [0, 31, 33, 64]) {
      expect(failureReason(Keys.publicKeyFromRaw("Ed25519", new Uint8Array(n)))).toBe("InvalidPublicKey")
    }
  })
})

describe("peer-ids spec §Secp256k1: Bitcoin key encodings", () => {
  const vector = peerIds.key_vectors.find((v) => v.key_type === "Secp256k1")!
  const publicKey = ok(Keys.publicKeyFromProtobuf(fromHex(vector.public_key_protobuf_hex)))
  it("the public key is the 33-byte compressed point; an uncompressed point is accepted and stored compressed", () => {
    expect(publicKey.raw.length).toBe(33)
    const uncompressed = secp256k1.Point.fromBytes(publicKey.raw).toBytes(false)
    expect(ok(Keys.publicKeyFromRaw("Secp256k1", uncompressed)).raw).toEqual(publicKey.raw)
  })
  it("a point not on the curve, and private scalars 0 and >= n, are rejected", () => {
    const bad = Uint8Array.from(publicKey.raw)
    bad[0] = 0x05
    expect(failureReason(Keys.publicKeyFromRaw("Secp256k1", bad))).toBe("InvalidPublicKey")
    expect(failureReason(Keys.privateKeyFromRaw("Secp256k1", new Uint8Array(32)))).toBe("InvalidPrivateKey")
    expect(failureReason(Keys.privateKeyFromRaw("Secp256k1", new Uint8Array(32).fill(0xff)))).toBe("InvalidPrivateKey")
  })
  it("signatures are DER over SHA-256(msg) with low S (BIP 62), the form go-libp2p verifies", () => {
    const key = ok(Keys.privateKeyFromProtobuf(fromHex(vector.private_key_protobuf_hex)))
    const msg = new TextEncoder().encode("low-S")
    const sig = ok(key.sign(msg))
    const parsed = secp256k1.Signature.fromBytes(sig, "der")
    expect(parsed.hasHighS()).toBe(false)
    expect(secp256k1.verify(sig, msg, key.publicKey.raw, { format: "der", prehash: true })).toBe(true)
  })
})

describe("peer-ids spec §RSA and §ECDSA: DER key data must be canonical", () => {
  const rsa = peerIds.key_vectors.find((v) => v.key_type.startsWith("RSA"))!
  const ecdsa = peerIds.key_vectors.find((v) => v.key_type.startsWith("ECDSA"))!
  it("an RSA SubjectPublicKeyInfo whose AlgorithmIdentifier parameters are not NULL is rejected (OpenSSL would read it)", () => {
    const spki = ok(Keys.publicKeyFromProtobuf(fromHex(rsa.public_key_protobuf_hex))).raw
    expect(toHex(spki.subarray(4, 19))).toBe("300d06092a864886f70d0101010500")
    const altered = Uint8Array.from(spki)
    altered[17] = 0x07 // NULL (05 00) becomes an empty ObjectDescriptor (07 00)
    expect(failureReason(Keys.publicKeyFromRaw("RSA", altered))).toBe("InvalidPublicKey")
  })
  it("an ECDSA SubjectPublicKeyInfo with a compressed point is rejected (go-libp2p reads uncompressed points only)", () => {
    const spki = ok(Keys.publicKeyFromProtobuf(fromHex(ecdsa.public_key_protobuf_hex))).raw
    const point = spki.subarray(spki.length - 65)
    const x = point.subarray(1, 33)
    const yOdd = (point[64]! & 1) === 1
    const compressed = Uint8Array.of(
      ...fromHex("3039301306072a8648ce3d020106082a8648ce3d030107032200"),
      yOdd ? 0x03 : 0x02,
      ...x
    )
    expect(failureReason(Keys.publicKeyFromRaw("ECDSA", compressed))).toBe("InvalidPublicKey")
  })
  it("private key DER with trailing bytes is rejected", () => {
    for (const v of [rsa, ecdsa]) {
      const data = ok(Keys.privateKeyFromProtobuf(fromHex(v.private_key_protobuf_hex))).raw
      const type = v.key_type.startsWith("RSA") ? "RSA" : "ECDSA"
      expect(failureReason(Keys.privateKeyFromRaw(type, Uint8Array.of(...data, 0)))).toBe("InvalidPrivateKey")
    }
  })
})

describe("peer-ids spec §Keys: protobuf decoding is strict [peer-ids:keys:1] [peer-ids:keys:2] [peer-ids:keys:3] [peer-ids:keys:4] [peer-ids:keys:5]", () => {
  const vector = peerIds.key_vectors.find((v) => v.key_type === "Ed25519")!
  const bytes = fromHex(vector.public_key_protobuf_hex)
  it("an unknown KeyType value is UnsupportedKeyType", () => {
    const other = Uint8Array.from(bytes)
    other[1] = 4
    expect(failureReason(Keys.publicKeyFromProtobuf(other))).toBe("UnsupportedKeyType")
  })
  it("fields out of tag order, an extra field, a missing field, or a padded varint are rejected (deterministic encoding)", () => {
    const reordered = Uint8Array.of(...bytes.subarray(2), 0x08, 0x01)
    const extra = Uint8Array.of(...bytes, 0x18, 0x01)
    const missingType = bytes.subarray(2)
    const missingData = bytes.subarray(0, 2)
    const padded = Uint8Array.of(0x08, 0x81, 0x00, ...bytes.subarray(2))
    for (const b of [reordered, extra, missingType, missingData, padded]) {
      expect(failureReason(Keys.publicKeyFromProtobuf(b))).toBe("InvalidProtobuf")
    }
  })
  it("key data of the wrong type is rejected", () => {
    const secp = peerIds.key_vectors.find((v) => v.key_type === "Secp256k1")!
    const data = fromHex(secp.public_key_protobuf_hex).subarray(4)
    expect(Result.isFailure(Keys.publicKeyFromRaw("ECDSA", data))).toBe(true)
    expect(Result.isFailure(Keys.publicKeyFromRaw("RSA", data))).toBe(true)
    expect(Result.isFailure(Keys.publicKeyFromRaw("Ed25519", data))).toBe(true)
  })
})

describe("RFC 8032 §7.1 Ed25519 test vectors (peer-ids spec §Ed25519: signatures follow RFC 8032)", () => {
  for (const v of rfc8032.vectors) {
    it(`${v.name}: the seed gives the public key and the exact signature, which verifies`, () => {
      const key = ok(Keys.ed25519FromSeed(fromHex(v.secret_key)))
      expect(toHex(key.publicKey.raw)).toBe(v.public_key)
      expect(toHex(key.raw)).toBe(v.secret_key + v.public_key)
      const signature = ok(key.sign(fromHex(v.message)))
      expect(toHex(signature)).toBe(v.signature)
      const publicKey = ok(Keys.publicKeyFromRaw("Ed25519", fromHex(v.public_key)))
      expect(publicKey.verify(fromHex(v.message), fromHex(v.signature))).toBe(true)
    })
  }

  it("a public key's verdicts do not depend on how often it has verified (its node:crypto key is kept from the second verify on)", () => {
    for (const v of rfc8032.vectors) {
      const publicKey = ok(Keys.publicKeyFromRaw("Ed25519", fromHex(v.public_key)))
      const forged = fromHex(v.signature)
      forged[0]! ^= 1
      const verdicts = [forged, fromHex(v.signature), forged, fromHex(v.signature), forged].map((sig) =>
        publicKey.verify(fromHex(v.message), sig)
      )
      expect(verdicts).toEqual([false, true, false, true, false])
    }
  })
})

// ---------------------------------------------------------------------------
// Wycheproof: our verify must agree with every valid/invalid verdict

interface Outcome {
  readonly test: WycheproofTest
  readonly verified: boolean
}

const runWycheproof = (file: string, type: Keys.KeyType, keyOf: (g: WycheproofGroup) => string) => {
  const data = wycheproof(file)
  const outcomes: Array<Outcome> = []
  for (const group of data.testGroups) {
    const key = ok(Keys.publicKeyFromRaw(type, fromHex(keyOf(group))))
    for (const test of group.tests) {
      outcomes.push({ test, verified: key.verify(fromHex(test.msg), fromHex(test.sig)) })
    }
  }
  expect(outcomes.length).toBe(data.numberOfTests)
  return outcomes
}

const disagreements = (outcomes: ReadonlyArray<Outcome>) =>
  outcomes.filter((o) => o.test.result !== "acceptable" && o.verified !== (o.test.result === "valid"))

describe("Wycheproof (peer-ids spec §Key Types signature schemes)", () => {
  it("Ed25519 (RFC 8032): every valid and invalid case, 151 in all", () => {
    const outcomes = runWycheproof("ed25519_test.json", "Ed25519", (g) => g.publicKey.pk!)
    expect(disagreements(outcomes).map((o) => o.test.tcId)).toEqual([])
    expect(outcomes.filter((o) => o.test.result === "acceptable")).toEqual([])
  })

  it("ECDSA P-256 with SHA-256, DER signatures: every valid and invalid case", () => {
    const outcomes = runWycheproof("ecdsa_secp256r1_sha256_test.json", "ECDSA", (g) => g.publicKeyDer)
    expect(disagreements(outcomes).map((o) => o.test.tcId)).toEqual([])
  })

  it("RSASSA-PKCS1-v1_5 2048 with SHA-256: every valid and invalid case; the one `acceptable` case (missing NULL) is rejected [peer-ids:key-types:2]", () => {
    const outcomes = runWycheproof("rsa_signature_2048_sha256_test.json", "RSA", (g) => g.publicKeyDer)
    expect(disagreements(outcomes).map((o) => o.test.tcId)).toEqual([])
    const acceptable = outcomes.filter((o) => o.test.result === "acceptable")
    expect(acceptable.map((o) => [o.test.tcId, o.test.comment, o.verified])).toEqual([
      [8, "Missing NULL in the ASN encoding", false]
    ])
  })

  it("secp256k1, Bitcoin rules (DER, SHA-256, low S required): every valid and invalid case", () => {
    const outcomes = runWycheproof(
      "ecdsa_secp256k1_sha256_bitcoin_test.json",
      "Secp256k1",
      (g) => g.publicKey.uncompressed!
    )
    expect(disagreements(outcomes).map((o) => o.test.tcId)).toEqual([])
  })

  it("secp256k1, plain ECDSA rules: every case agrees, except valid high-S signatures, which our low-S policy rejects and whose low-S twin verifies", () => {
    const data = wycheproof("ecdsa_secp256k1_sha256_test.json")
    let policyRejections = 0
    let checked = 0
    for (const group of data.testGroups) {
      const key = ok(Keys.publicKeyFromRaw("Secp256k1", fromHex(group.publicKey.uncompressed!)))
      for (const test of group.tests) {
        checked++
        const msg = fromHex(test.msg)
        const verified = key.verify(msg, fromHex(test.sig))
        if (verified === (test.result === "valid")) continue
        // the only allowed disagreement: a valid signature with s > n/2
        expect(test.result).toBe("valid")
        const parsed = secp256k1.Signature.fromBytes(fromHex(test.sig), "der")
        expect(parsed.hasHighS()).toBe(true)
        const lowS = new secp256k1.Signature(parsed.r, secp256k1.Point.Fn.ORDER - parsed.s)
        expect(key.verify(msg, lowS.toBytes("der"))).toBe(true)
        policyRejections++
      }
    }
    expect(checked).toBe(data.numberOfTests)
    expect(policyRejections).toBeGreaterThan(0)
  })
})

describe("peer-ids spec §Key Types: generation", () => {
  for (const type of Keys.keyTypes) {
    it.effect(`generate(${type}) makes a key whose protobuf round-trips and whose signatures verify [peer-ids:key-types:1] [peer-ids:key-types:2] [peer-ids:key-types:3]`, () =>
      Effect.gen(function*() {
        const key = yield* Keys.generate(type)
        expect(key.type).toBe(type)
        const again = ok(Keys.privateKeyFromProtobuf(Keys.privateKeyToProtobuf(key)))
        expect(Keys.equals(again, key)).toBe(true)
        expect(Keys.equals(again.publicKey, key.publicKey)).toBe(true)
        const msg = new TextEncoder().encode(type)
        expect(key.publicKey.verify(msg, ok(key.sign(msg)))).toBe(true)
      }))
  }
  it.effect("RSA sizes outside 2048..8192 bits are refused", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Keys.generate("RSA", { bits: 1024 }))
      expect(error.reason).toBe("GenerateFailed")
    }))
})
