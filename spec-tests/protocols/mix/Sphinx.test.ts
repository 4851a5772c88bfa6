/**
 * LIP-99 §8 Sphinx details that the vectors and properties do not state on
 * their own: the sizes of §8.3, the X25519 chain of §8.5.2 3.a checked with a
 * second X25519 implementation (@noble/curves, pure JS, against our node:crypto
 * one), the exit block layout nim-libp2p-mix's L = 3 exit check reads (§8.6.2),
 * the SURB id placement, and the typed failures of construction.
 */
import { describe, expect, it } from "@effect/vitest"
import { x25519 as noble } from "@noble/curves/ed25519.js"
import { Result } from "effect"
import * as crypto from "node:crypto"
import * as Sphinx from "../../../src/protocols/mix/sphinx.ts"
import { fromHex, readJson } from "../../support/vectors.ts"

const get = <A, E>(r: Result.Result<A, E>): A => Result.getOrThrow(r)
const sha256 = (...parts: ReadonlyArray<Uint8Array>) => {
  const h = crypto.createHash("sha256")
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}
const rand = (n: number) => new Uint8Array(crypto.randomBytes(n))
const nodes = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const privateKey = rand(32)
    const address = new Uint8Array(Sphinx.ADDRESS_SIZE)
    address[0] = i + 1
    return { privateKey, hop: { publicKey: get(Sphinx.publicKeyOf(privateKey)), address } }
  })

describe("mix Sphinx", () => {
  it("LIP-99 §8.3: α 32, β ((t+1)r+1)κ = 576, γ 16, header 624, δ 3984, packet 4608, m 3968, address tκ-2 = 94", () => {
    expect([Sphinx.ALPHA_SIZE, Sphinx.BETA_SIZE, Sphinx.GAMMA_SIZE, Sphinx.HEADER_SIZE]).toEqual([32, 576, 16, 624])
    expect([Sphinx.PAYLOAD_SIZE, Sphinx.PACKET_SIZE, Sphinx.MESSAGE_SIZE, Sphinx.ADDRESS_SIZE]).toEqual([
      3984,
      4608,
      3968,
      94
    ])
  })

  it("LIP-99 §8.5.2 3.a/§8.6.3 step 2: the vectors' shared secrets and blinded α agree with a second X25519 (@noble/curves)", () => {
    const file = readJson<{
      readonly cases: ReadonlyArray<{
        readonly input: { readonly path: ReadonlyArray<{ readonly privateKey: string }> }
        readonly hops: ReadonlyArray<
          { readonly packet: string; readonly sharedSecret: string; readonly outcome: string }
        >
      }>
    }>("mix/sphinx-vectors.json")
    for (const c of file.cases) {
      c.hops.forEach((hop, i) => {
        const alpha = fromHex(hop.packet).subarray(0, Sphinx.ALPHA_SIZE)
        const s = noble.scalarMult(fromHex(c.input.path[i]!.privateKey), alpha)
        expect(Buffer.from(s).toString("hex")).toBe(hop.sharedSecret)
        if (hop.outcome === "forward") {
          const next = fromHex(c.hops[i + 1]!.packet).subarray(0, Sphinx.ALPHA_SIZE)
          expect(noble.scalarMult(sha256(alpha, s), alpha)).toEqual(next)
        }
      })
    }
  })

  it("LIP-99 §8.5.2 3.c/§8.6.2: with L = 3 the exit block is Δ | 0 delay | 0_κ | ((t+1)(r-3)+1)κ zeros (nim's exit test holds)", () => {
    const path = nodes(3)
    const destination = rand(Sphinx.ADDRESS_SIZE)
    const message = rand(Sphinx.MESSAGE_SIZE)
    let p = get(Sphinx.createPacket({
      path: path.map((n) => n.hop),
      delays: [5, 6, 0],
      destination,
      ephemeral: rand(32),
      message
    })).packet
    for (let i = 0; i < 2; i++) {
      const r = get(Sphinx.processPacket(p, path[i]!.privateKey))
      if (r._tag !== "Forward") throw new Error("expected a forward")
      p = r.packet
    }
    // Decrypt the exit's routing block by hand, as §8.6.1 step 4 says.
    const s = noble.scalarMult(path[2]!.privateKey, p.subarray(0, 32))
    const kdf = (label: string) => sha256(Buffer.from(label), s).subarray(0, 16)
    const beta = p.subarray(Sphinx.ALPHA_SIZE, Sphinx.ALPHA_SIZE + Sphinx.BETA_SIZE)
    const B = Sphinx.aesCtr(kdf("aes_key"), kdf("iv"), Buffer.concat([beta, new Uint8Array(Sphinx.BLOCK_SIZE)]))
    expect(B.subarray(0, Sphinx.ADDRESS_SIZE)).toEqual(destination)
    const nimPadding = ((Sphinx.T + 1) * (Sphinx.R - 3) + 1) * Sphinx.K
    expect(B.subarray(Sphinx.ADDRESS_SIZE, Sphinx.BLOCK_SIZE + nimPadding).every((b) => b === 0)).toBe(true)
    const exit = get(Sphinx.processPacket(p, path[2]!.privateKey))
    expect(exit._tag).toBe("Exit")
  })

  it("LIP-99 §4.2 SURBs (nim): the reply's last hop reads its id at offset tκ and opens the reply", () => {
    const path = nodes(3)
    const id = rand(Sphinx.SURB_ID_SIZE)
    const { secrets, surb } = get(Sphinx.createSurb({
      path: path.map((n) => n.hop),
      delays: [1, 2, 0],
      ephemeral: rand(32),
      id,
      key: rand(Sphinx.K)
    }))
    expect(Sphinx.encodeSurb(surb).byteLength).toBe(Sphinx.SURB_SIZE)
    const reply = rand(Sphinx.MESSAGE_SIZE)
    let p = get(Sphinx.useSurb(surb, reply))
    expect(p.byteLength).toBe(Sphinx.PACKET_SIZE)
    for (let i = 0; i < 3; i++) {
      const r = get(Sphinx.processPacket(p, path[i]!.privateKey))
      if (r._tag === "Forward") p = r.packet
      else {
        expect(r._tag).toBe("Reply")
        if (r._tag !== "Reply") return
        expect(r.surbId).toEqual(id)
        expect(get(Sphinx.openReply(secrets, r.delta))).toEqual(reply)
        // Someone else's secrets do not open it.
        expect(Result.isFailure(Sphinx.openReply({ key: rand(16), secrets: secrets.secrets }, r.delta))).toBe(true)
      }
    }
  })

  it("LIP-99 §8.5.1: paths outside 3..r, a wrong-size m or address, and a small-order α fail with typed reasons", () => {
    const input = (n: number) => ({
      path: nodes(n).map((x) => x.hop),
      delays: Array.from({ length: n }, () => 0),
      destination: rand(Sphinx.ADDRESS_SIZE),
      ephemeral: rand(32),
      message: rand(Sphinx.MESSAGE_SIZE)
    })
    for (const n of [0, 1, 2, 6]) {
      const r = Sphinx.createPacket(input(n))
      expect(Result.isFailure(r) && r.failure.reason === "PathLength").toBe(true)
    }
    const short = Sphinx.createPacket({ ...input(3), message: rand(10) })
    expect(Result.isFailure(short) && short.failure.reason === "MessageTooLarge").toBe(true)
    const badDest = Sphinx.createPacket({ ...input(3), destination: rand(3) })
    expect(Result.isFailure(badDest) && badDest.failure.reason === "BadAddress").toBe(true)
    // α = 0 (a point of small order): X25519 gives all zeros, which is refused.
    const zeroAlpha = new Uint8Array(Sphinx.PACKET_SIZE)
    const r = Sphinx.processPacket(zeroAlpha, rand(32))
    expect(Result.isFailure(r) && r.failure.reason === "BadPoint").toBe(true)
  })
})
