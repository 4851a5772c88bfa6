import { describe, expect, it } from "@effect/vitest"
import { Equal, Hash, HashSet, Option, Result } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as Multibase from "../../src/core/Multibase.ts"
import * as Multihash from "../../src/core/Multihash.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { failureReason, ok } from "../support/result.ts"
import { fromHex, readJson, toHex } from "../support/vectors.ts"

interface KeyVector {
  readonly key_type: string
  readonly public_key_protobuf_hex: string
  readonly derived: {
    readonly peer_id_multihash_hex: string
    readonly peer_id_base58btc: string
    readonly peer_id_cidv1_base32: string
    readonly multihash: string
  }
}
interface StringExample {
  readonly string: string
  readonly kind: string
  readonly derived: {
    readonly multihash_hex: string
    readonly same_peer_as_base58?: string
    readonly ed25519_public_key_hex?: string
    readonly cidv1_base32?: string
  }
}
const peerIds = readJson<{
  readonly key_vectors: ReadonlyArray<KeyVector>
  readonly peer_id_string_examples: ReadonlyArray<StringExample>
  readonly spec_rules: { readonly identity_threshold_bytes: number }
}>("libp2p-specs/peer-ids.json")

interface Fixture {
  readonly name: string
  readonly public_key_protobuf_hex: string
  readonly public_key_multihash_hex?: string
  readonly private_key_protobuf_hex?: string
  readonly private_key_multihash_hex?: string
  readonly derived_peer_id: string
}
const fixtures = readJson<{ readonly fixtures: ReadonlyArray<Fixture> }>("interop/libp2p-key-signature-fixtures.json")

describe("peer-ids spec §Peer Ids: derivation from the key vectors", () => {
  for (const v of peerIds.key_vectors) {
    it(`${v.key_type}: ${v.derived.multihash} multihash, base58btc ${v.derived.peer_id_base58btc}, CIDv1 base32 [peer-ids:peer-ids:1] [peer-ids:string-representation:2] [peer-ids:string-representation:4]`, () => {
      const encoded = fromHex(v.public_key_protobuf_hex)
      const key = ok(Keys.publicKeyFromProtobuf(encoded))
      const id = PeerId.fromPublicKey(key)
      const bytes = PeerId.toBytes(id)
      expect(toHex(bytes)).toBe(v.derived.peer_id_multihash_hex)
      // identity iff the encoded key is at most 42 bytes
      const mh = ok(Multihash.decode(bytes))
      expect(mh.code).toBe(encoded.length <= peerIds.spec_rules.identity_threshold_bytes ? 0x00 : 0x12)
      expect(PeerId.toString(id)).toBe(v.derived.peer_id_base58btc)
      expect(`${id}`).toBe(v.derived.peer_id_base58btc)
      expect(PeerId.toCidString(id)).toBe(v.derived.peer_id_cidv1_base32)
      // both string forms decode back to the same peer
      expect(PeerId.equals(ok(PeerId.fromString(v.derived.peer_id_base58btc)), id)).toBe(true)
      expect(PeerId.equals(ok(PeerId.fromString(v.derived.peer_id_cidv1_base32)), id)).toBe(true)
      // §Keys: the public key is recoverable exactly when it is inlined
      const parsed = ok(PeerId.fromBytes(bytes))
      if (mh.code === 0x00) {
        expect(Option.map(PeerId.publicKey(parsed), Keys.publicKeyToProtobuf)).toEqual(Option.some(encoded))
      } else {
        expect(Option.isNone(PeerId.publicKey(parsed))).toBe(true)
      }
      expect(PeerId.matchesPublicKey(parsed, key)).toBe(true)
    })
  }
})

describe("peer-ids spec §Decoding: the spec's examples [peer-ids:string-representation:1]", () => {
  for (const e of peerIds.peer_id_string_examples) {
    it(`${e.string} (${e.kind})`, () => {
      const id = ok(PeerId.fromString(e.string))
      expect(toHex(PeerId.toBytes(id))).toBe(e.derived.multihash_hex)
      if (e.derived.same_peer_as_base58 !== undefined) {
        expect(PeerId.toString(id)).toBe(e.derived.same_peer_as_base58)
        expect(PeerId.toCidString(id)).toBe(e.string)
      } else {
        expect(PeerId.toString(id)).toBe(e.string)
      }
      if (e.derived.cidv1_base32 !== undefined) expect(PeerId.toCidString(id)).toBe(e.derived.cidv1_base32)
      if (e.derived.ed25519_public_key_hex !== undefined) {
        const key = Option.getOrThrow(PeerId.publicKey(id))
        expect(key.type).toBe("Ed25519")
        expect(toHex(key.raw)).toBe(e.derived.ed25519_public_key_hex)
      }
    })
  }

  const example = ok(PeerId.fromString("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"))
  it("a CIDv1 in any multibase encoding decodes to the same peer id", () => {
    for (const encoding of Multibase.encodings) {
      const text = PeerId.toCidString(example, encoding)
      // the legacy rule wins for strings starting with "1" (base2 CIDs start with "0", so no clash)
      expect(PeerId.equals(ok(PeerId.fromString(text)), example), encoding).toBe(true)
    }
  })
  it("a CID whose codec is not libp2p-key is rejected [peer-ids:string-representation:3]", () => {
    const cid = Uint8Array.of(0x01, 0x55, ...PeerId.toBytes(example)) // raw codec
    expect(failureReason(PeerId.fromString(Multibase.encode("base32", cid)))).toBe("InvalidCid")
    expect(failureReason(PeerId.fromCidBytes(cid))).toBe("InvalidCid")
  })
  it("a CIDv0 (bare sha2-256 multihash under a multibase prefix) is rejected: the spec requires CIDv1 [peer-ids:string-representation:3]", () => {
    expect(failureReason(PeerId.fromString(Multibase.encode("base32", PeerId.toBytes(example))))).toBe("InvalidCid")
  })
  it("strings that are neither form are rejected", () => {
    expect(failureReason(PeerId.fromString(""))).toBe("InvalidString")
    expect(failureReason(PeerId.fromString("Q"))).toBe("InvalidString") // reserved multibase prefix, not Qm
    expect(failureReason(PeerId.fromString("/ip4/1.2.3.4"))).toBe("InvalidString")
    expect(failureReason(PeerId.fromString("Qm0OIl"))).toBe("InvalidEncoding") // not base58btc
    expect(failureReason(PeerId.fromString("b!!!"))).toBe("InvalidEncoding")
  })
})

describe("peer-ids spec §Peer Ids: what a peer id multihash may be", () => {
  it("sha2-256 digests must be 32 bytes; other hash functions are rejected", () => {
    expect(failureReason(PeerId.fromBytes(Multihash.make(0x12, new Uint8Array(31)).bytes))).toBe("InvalidMultihash")
    expect(failureReason(PeerId.fromBytes(Multihash.make(0x13, new Uint8Array(64)).bytes))).toBe("InvalidMultihash")
    expect(failureReason(PeerId.fromBytes(Uint8Array.of(0x12, 0x20, 1, 2)))).toBe("InvalidMultihash")
    expect(failureReason(PeerId.fromBytes(new Uint8Array(0)))).toBe("InvalidMultihash")
  })
  it("an identity multihash must inline a valid public key of at most 42 bytes [peer-ids:peer-ids:1]", () => {
    const ed = peerIds.key_vectors.find((v) => v.key_type === "Ed25519")!
    const encoded = fromHex(ed.public_key_protobuf_hex)
    expect(Result.isSuccess(PeerId.fromBytes(Multihash.identity(encoded).bytes))).toBe(true)
    expect(failureReason(PeerId.fromBytes(Multihash.identity(encoded.subarray(0, 20)).bytes))).toBe(
      "InvalidPublicKey"
    )
    const rsa = peerIds.key_vectors.find((v) => v.key_type.startsWith("RSA"))!
    expect(failureReason(PeerId.fromBytes(Multihash.identity(fromHex(rsa.public_key_protobuf_hex)).bytes))).toBe(
      "InvalidMultihash"
    )
  })
})

describe("peer-ids spec §Peer Ids: go-libp2p and js-libp2p fixtures", () => {
  for (const f of fixtures.fixtures) {
    it(`${f.name}: peer id ${f.derived_peer_id}`, () => {
      const encoded = fromHex(f.public_key_protobuf_hex)
      const key = Keys.publicKeyFromProtobuf(encoded)
      // the RSA-512 fixture is below our minimum key size: derive its id from the encoded key alone
      const bytes = Result.isSuccess(key)
        ? PeerId.toBytes(PeerId.fromPublicKey(key.success))
        : (encoded.length <= 42 ? Multihash.identity(encoded) : Multihash.sha256(encoded)).bytes
      expect(PeerId.toString(ok(PeerId.fromBytes(bytes)))).toBe(f.derived_peer_id)
      if (f.public_key_multihash_hex !== undefined) {
        expect(toHex(Multihash.sha256(encoded).bytes)).toBe(f.public_key_multihash_hex)
        expect(toHex(bytes)).toBe(f.public_key_multihash_hex)
      }
      if (f.private_key_multihash_hex !== undefined) {
        expect(toHex(Multihash.sha256(fromHex(f.private_key_protobuf_hex!)).bytes)).toBe(f.private_key_multihash_hex)
      }
    })
  }
})

describe("PeerId is a value: Equal and Hash", () => {
  it("peer ids parsed from different forms are Equal, hash alike, and dedupe in a HashSet", () => {
    const a = ok(PeerId.fromString("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"))
    const b = ok(PeerId.fromString("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"))
    const c = ok(PeerId.fromString("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"))
    expect(Equal.equals(a, b)).toBe(true)
    expect(Equal.equals(a, c)).toBe(false)
    expect(Hash.hash(a)).toBe(Hash.hash(b))
    expect(HashSet.size(HashSet.fromIterable([a, b, c]))).toBe(2)
    expect(PeerId.isPeerId(a)).toBe(true)
    expect(PeerId.isPeerId("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")).toBe(false)
    expect(JSON.stringify({ a })).toBe(`{"a":"QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"}`)
  })
  it("toBytes returns a copy: mutating it does not change the peer id", () => {
    const a = ok(PeerId.fromString("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"))
    const bytes = PeerId.toBytes(a)
    bytes[5]! ^= 0xff
    expect(PeerId.toString(a)).toBe("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
  })
})
