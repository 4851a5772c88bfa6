/**
 * Our Sphinx implementation against the committed LIP-99 vectors
 * (spec-tests/vectors/mix/sphinx-vectors.json, README beside it): the packet
 * built from each case's inputs is the file's first packet, and processing each
 * hop's packet with that hop's key gives the file's secret, tag, keys, outcome
 * and next packet. The file is also exactly what the generator writes today.
 */
import { describe, expect, it } from "@effect/vitest"
import { Result } from "effect"
import * as Message from "../../../src/protocols/mix/message.ts"
import * as Sphinx from "../../../src/protocols/mix/sphinx.ts"
import { fromHex, readJson, toHex } from "../../support/vectors.ts"
import { build } from "./vectors.ts"

interface Hop {
  readonly packet: string
  readonly sharedSecret: string
  readonly tag: string
  readonly keys: Record<string, string>
  readonly outcome: "forward" | "exit" | "reply"
  readonly nextHop?: string
  readonly delay?: number
  readonly destination?: string
  readonly message?: string
  readonly surbId?: string
  readonly delta?: string
}
interface Case {
  readonly name: string
  readonly input: {
    readonly path: ReadonlyArray<{ readonly privateKey: string; readonly publicKey: string; readonly address: string }>
    readonly delays: ReadonlyArray<number>
    readonly ephemeral: string
    readonly destination?: string
    readonly message: string
    readonly surbId?: string
    readonly surbKey?: string
    readonly reply?: string
  }
  readonly hops: ReadonlyArray<Hop>
  readonly surb?: string
  readonly opened?: string
}
const file = readJson<{ readonly cases: ReadonlyArray<Case> }>("mix/sphinx-vectors.json")
const get = <A, E>(r: Result.Result<A, E>): A => Result.getOrThrow(r)

describe("mix Sphinx vectors", () => {
  it("LIP-99 §8: the committed file is what the generator produces", () => {
    expect(JSON.parse(JSON.stringify(build()))).toEqual(file)
  })

  for (const c of file.cases) {
    it(`LIP-99 §8.5 + §8.6 (${c.name}): construction and every hop match the file`, () => {
      const path = c.input.path.map((h) => ({ publicKey: fromHex(h.publicKey), address: fromHex(h.address) }))
      for (const h of c.input.path) expect(toHex(get(Sphinx.publicKeyOf(fromHex(h.privateKey))))).toBe(h.publicKey)
      if (c.input.surbKey !== undefined) {
        const { surb } = get(Sphinx.createSurb({
          path,
          delays: c.input.delays,
          ephemeral: fromHex(c.input.ephemeral),
          id: fromHex(c.input.surbId!),
          key: fromHex(c.input.surbKey)
        }))
        expect(toHex(Sphinx.encodeSurb(surb))).toBe(c.surb)
        expect(toHex(get(Sphinx.useSurb(surb, fromHex(c.input.message))))).toBe(c.hops[0]!.packet)
        expect(toHex(get(Message.encodeReply(fromHex(c.input.reply!), 2)))).toBe(c.input.message)
      } else {
        const built = get(Sphinx.createPacket({
          path,
          delays: c.input.delays,
          destination: fromHex(c.input.destination!),
          ephemeral: fromHex(c.input.ephemeral),
          message: fromHex(c.input.message)
        }))
        expect(toHex(built.packet)).toBe(c.hops[0]!.packet)
      }
      c.hops.forEach((hop, i) => {
        const key = fromHex(c.input.path[i]!.privateKey)
        const packet = fromHex(hop.packet)
        expect(packet.byteLength).toBe(Sphinx.PACKET_SIZE)
        const session = get(Sphinx.sessionOf(packet, key))
        expect(toHex(session.s)).toBe(hop.sharedSecret)
        expect(toHex(session.tag)).toBe(hop.tag)
        for (const [label, value] of Object.entries(hop.keys)) {
          expect(toHex(Sphinx.kdf(Buffer.from(label), session.s))).toBe(value)
        }
        const out = get(Sphinx.processPacket(packet, key))
        if (hop.outcome === "forward") {
          expect(out._tag).toBe("Forward")
          if (out._tag !== "Forward") return
          expect(toHex(out.next)).toBe(hop.nextHop)
          expect(out.next).toEqual(fromHex(c.input.path[i + 1]!.address))
          expect(out.delay).toBe(hop.delay)
          expect(out.delay).toBe(c.input.delays[i])
          expect(toHex(out.packet)).toBe(c.hops[i + 1]!.packet)
        } else if (hop.outcome === "exit") {
          expect(out._tag).toBe("Exit")
          if (out._tag !== "Exit") return
          expect(toHex(out.destination)).toBe(c.input.destination)
          expect(toHex(out.message)).toBe(c.input.message)
        } else {
          expect(out._tag).toBe("Reply")
          if (out._tag !== "Reply") return
          expect(toHex(out.surbId)).toBe(c.input.surbId)
          expect(toHex(out.delta)).toBe(hop.delta)
        }
      })
    })
  }
})
