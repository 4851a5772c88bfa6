/**
 * mDNS on a real LAN (specs discovery/mdns.md §Peer Discovery): network
 * namespaces joined by a bridge (`netns.ts`), our CLI nodes (`node --mdns`)
 * and js-libp2p's `@libp2p/mdns` (js-peer.mjs with `mdns`) each in a
 * namespace of its own, and a raw dgram attacker (`mdnsProbe.mjs`).
 * Skipped only where namespaces cannot be made (not Linux, not root, no `ip`).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { type Cli, spawnCli, stop } from "../cli/support.ts"
import { SCRIPT as JS_PEER } from "../interop/harness/JsPeer.ts"
import * as Process from "../support/process.ts"
import * as Netns from "./netns.ts"

const skip = Netns.skipReason()
const ROOT = fileURLToPath(new URL("../../", import.meta.url))
const PROBE = fileURLToPath(new URL("./mdnsProbe.mjs", import.meta.url))
const LISTEN = fileURLToPath(new URL("./mdnsListen.mjs", import.meta.url))
const HOSTS = ["a", "b", "c", "d"]
let lan: Netns.Lan | undefined
const ns = (h: string) => lan!.ns(h)

beforeAll(() => {
  if (skip !== undefined) return
  Netns.cleanStale()
  lan = Netns.make("m", HOSTS)
})
afterAll(() => lan?.remove())

const ourNode = (host: string) =>
  spawnCli(["node", "--listen", "/ip4/0.0.0.0/tcp/0", "--mdns", "--ephemeral", "--json"], { netns: ns(host) })

const listening = (cli: Cli) =>
  Effect.map(cli.awaitLine((l) => l["event"] === "listening", "60 seconds"), (l) => l["peerId"] as string)

const discovered = (cli: Cli, peerId: string) =>
  cli.awaitLine(
    (l) => l["event"] === "peer:discovery" && l["peerId"] === peerId && l["source"] === "mdns",
    "60 seconds"
  )

/** A process in a namespace, its stdout JSON lines. */
const spawnIn = (host: string, args: ReadonlyArray<string>) =>
  Process.spawn("ip", ["netns", "exec", ns(host), process.execPath, ...args], { cwd: ROOT, stdin: true })

const jsonLine = (p: Process.Process, pattern: string) =>
  Effect.map(
    p.awaitOutput(new RegExp(`^\\{.*${pattern}.*\\}$`, "m"), "60 seconds"),
    (m) => JSON.parse(m[0]) as Record<string, unknown>
  )

describe.skipIf(skip !== undefined)(`mDNS on a bridged LAN of network namespaces${skip ? ` (${skip})` : ""}`, () => {
  it.live(
    "§Peer Discovery: three of our nodes in separate namespaces find each other and connect",
    () =>
      Effect.gen(function*() {
        const nodes = [yield* ourNode("a"), yield* ourNode("b"), yield* ourNode("c")]
        const ids = yield* Effect.forEach(nodes, listening)
        for (const [i, node] of nodes.entries()) {
          for (const [j, id] of ids.entries()) {
            if (i === j) continue
            const line = yield* discovered(node, id)
            // only LAN addresses: the other namespace's 10.77.0.x, never loopback
            expect((line["addrs"] as Array<string>).every((a) => a.startsWith(`/ip4/10.77.0.${j + 1}/tcp/`))).toBe(true)
          }
        }
        for (const [i, node] of nodes.entries()) {
          for (const [j, id] of ids.entries()) {
            if (i !== j) yield* node.awaitLine((l) => l["event"] === "peer:connect" && l["peerId"] === id, "60 seconds")
          }
        }
        for (const node of nodes) expect((yield* stop(node)).code).toBe(0)
      }),
    180_000
  )

  it.live(
    "§Request: a peer answers its own query, so a listener that never asks still learns it [mdns:request:1]",
    () =>
      Effect.gen(function*() {
        const listener = yield* spawnIn("b", [LISTEN])
        yield* jsonLine(listener, `"event":"listening"`)
        const ours = yield* ourNode("a")
        const oursId = yield* listening(ours)
        const answer = yield* jsonLine(listener, `"event":"answer","peerId":"${oursId}"`)
        expect(answer["from"]).toBe("10.77.0.1")
        // nobody but our node asked: every query the listener heard came from 10.77.0.1
        const queries = listener.stdout().split("\n").filter((l) => l.includes(`"event":"query"`))
        expect(queries.length).toBeGreaterThan(0)
        for (const q of queries) expect(JSON.parse(q)["from"]).toBe("10.77.0.1")
        expect((yield* stop(ours)).code).toBe(0)
      }),
    180_000
  )

  it.live(
    "§Peer Discovery interop: ours finds js-libp2p's @libp2p/mdns and js finds ours",
    () =>
      Effect.gen(function*() {
        const ours = yield* ourNode("a")
        const oursId = yield* listening(ours)
        const js = yield* spawnIn("d", [
          JS_PEER,
          JSON.stringify({ listen: ["/ip4/0.0.0.0/tcp/0"], mdns: { interval: 1000 } })
        ])
        const ready = yield* jsonLine(js, `"event":"ready"`)
        const jsId = ready["peerId"] as string
        const found = yield* discovered(ours, jsId)
        expect(found["addrs"]).toContain(
          (ready["addrs"] as Array<string>).find((a) => a.startsWith("/ip4/10.77.0.4/"))!.replace(/\/p2p\/.*$/, "")
        )
        const jsFound = yield* jsonLine(js, `"event":"mdns:peer","peerId":"${oursId}"`)
        expect((jsFound["addrs"] as Array<string>).some((a) => a.startsWith("/ip4/10.77.0.1/tcp/"))).toBe(true)
        // and they connect (ours dials what it discovered)
        yield* ours.awaitLine((l) => l["event"] === "peer:connect" && l["peerId"] === jsId, "60 seconds")
        expect((yield* stop(ours)).code).toBe(0)
      }),
    180_000
  )

  it.live(
    "§Response, issue 18 bad input: garbage, truncated, oversized, many TXT records, spoofed ids: ignored, still answering",
    () =>
      Effect.gen(function*() {
        const ours = yield* ourNode("a")
        const oursId = yield* listening(ours)
        const newId = Effect.map(Keys.generate("Ed25519"), (k) => PeerId.toString(PeerId.fromPrivateKey(k)))
        const ids = {
          truncated: yield* newId,
          oversized: yield* newId,
          many: yield* newId,
          spoofFirst: yield* newId,
          spoofOther: yield* newId
        }
        const probe = yield* spawnIn("b", [PROBE, JSON.stringify(ids)])
        yield* jsonLine(probe, `"event":"sent"`)
        // still answering queries after all that
        const answer = yield* jsonLine(probe, `"event":"answer","peerId":"${oursId}".*"afterAttacks":true.*"IPv4"`)
        /** A missing line fails with what the probe saw (the attacks' answers, families, times). */
        const orReport = <A, E>(effect: Effect.Effect<A, E>) =>
          Effect.mapError(effect, (e) => new Error(`${String(e)}\nprobe saw:\n${probe.stdout().slice(-3000)}`))
        expect((answer["addrs"] as Array<string>).every((a) => a.startsWith("/ip4/10.77.0.1/tcp/"))).toBe(true)
        // the many-TXT peer: found, its addresses capped at 32
        const many = yield* orReport(discovered(ours, ids.many))
        expect((many["addrs"] as Array<string>).length).toBeLessThanOrEqual(32)
        expect((many["addrs"] as Array<string>).every((a) => a.startsWith("/ip4/10.78.0."))).toBe(true)
        // the spoofed response: the first id with its own address only
        const spoof = yield* orReport(discovered(ours, ids.spoofFirst))
        expect(spoof["addrs"]).toEqual(["/ip4/10.79.0.1/tcp/1"])
        // queries every 100 ms for 3 s: answered about once a second (RFC 6762 §6 rate limit), and still answered
        yield* Effect.sleep("3500 millis")
        const answers = probe.stdout().split("\n").filter((l) => l.includes(`"peerId":"${oursId}"`)).map((l) =>
          JSON.parse(l) as { afterAttacks: boolean; at: number; family: string }
        ).filter((a) => a.afterAttacks && a.family === "IPv4")
        const t0 = answers[0]!.at
        const inWindow = answers.filter((a) => a.at >= t0 && a.at < t0 + 3000).length
        expect(inWindow).toBeGreaterThanOrEqual(2)
        expect(inWindow).toBeLessThanOrEqual(5)
        // IPv6 (ff02::fb): our node answers the query there too
        yield* jsonLine(probe, `"event":"answer","peerId":"${oursId}".*"family":"IPv6"`)
        // the oversized peer and the spoofed other id were never announced
        const announced = ours.lines.filter((l) => l["event"] === "peer:discovery").map((l) => l["peerId"])
        expect(announced).not.toContain(ids.oversized)
        expect(announced).not.toContain(ids.spoofOther)
        // a truncated packet that still decodes may name its peer, but only with its own address
        for (const l of ours.lines.filter((l) => l["event"] === "peer:discovery" && l["peerId"] === ids.truncated)) {
          expect(l["addrs"]).toEqual(["/ip4/10.77.0.99/tcp/1"])
        }
        expect(ours.bad).toEqual([])
        expect((yield* stop(ours)).code).toBe(0)
      }),
    180_000
  )
})
