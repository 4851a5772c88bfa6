/**
 * Full-process interop of our command-line program (ARCHITECTURE.md §7, src/cli) with a
 * js-libp2p v3 node in another process: `node --json` is pinged and identified by js
 * (ping spec, identify spec §identify with an RFC 0003 signed peer record), and the
 * short-lived `ping --count N --json` and `identify --json` commands run against js. The
 * §7 JSON-lines contract is checked (one object per line on stdout, nothing else there),
 * as are the exit codes: 0 on success and after SIGTERM, non-zero with an error line on
 * failure.
 *
 * The CLI runs as `process.execPath src/cli/main.ts …` from the repository root (the
 * test's own Node 24, which runs TypeScript directly), like `npm start` does.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Keys from "../../src/core/Keys.ts"
import * as PeerId from "../../src/core/PeerId.ts"
import { runCli, spawnCli } from "../cli/support.ts"
import { bareText } from "../support/multiaddr.ts"
import * as JsPeer from "./harness/JsPeer.ts"

describe("interop with js-libp2p: our CLI (ARCHITECTURE §7) in its own process", () => {
  it.live(
    "ping spec + identify spec: js pings and identifies `node --json`; `ping --count 2` and `identify` against js; SIGTERM exits 0",
    () =>
      Effect.gen(function*() {
        expect(process.version.startsWith("v24.")).toBe(true)
        const [js, node] = yield* Effect.all([
          JsPeer.start(),
          spawnCli(["node", "--listen", "/ip4/127.0.0.1/tcp/0", "--json"])
        ], { concurrency: 2 })

        // §7: the first line is `listening` with the peer id and the bound addresses
        const listening = yield* node.awaitLine(() => true)
        expect(listening["event"]).toBe("listening")
        const peerId = listening["peerId"]
        const addrs = listening["addrs"]
        expect(typeof peerId).toBe("string")
        expect(PeerId.fromString(peerId as string)._tag).toBe("Success")
        expect(Array.isArray(addrs) && addrs.length).toBe(1)
        const addr = (addrs as Array<string>)[0]!
        expect(addr).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/[1-9][0-9]*/p2p/${peerId as string}$`))

        // js dials the CLI node, pings it and reads its identify (signed record verified by js)
        const dialed = yield* js.dial(addr)
        expect(dialed.peerId).toBe(peerId)
        const pinged = yield* js.ping({ peerId: peerId as string }, { count: 2, mode: "stream" })
        expect(pinged.rtts).toHaveLength(2)
        for (const rtt of pinged.rtts) expect(rtt).toBeGreaterThan(0)
        const id = yield* js.identify(peerId as string)
        expect(id.agentVersion).toBe("effect-libp2p/0.1.0")
        expect(id.protocols).toContain("/ipfs/ping/1.0.0")
        expect(id.protocols).toContain("/ipfs/id/1.0.0")
        expect(id.listenAddrs).toEqual([bareText(addr)])
        expect(id.peerRecordVerified).toBe(true)
        expect(id.peerRecord?.addrs).toEqual([bareText(addr)])
        // the CLI node reports the connection and identifies js by itself
        const connect = yield* node.awaitLine((l) => l["event"] === "peer:connect" && l["peerId"] === js.peerId)
        expect(String(connect["addr"])).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/[1-9][0-9]*$/)
        const identified = yield* node.awaitLine((l) => l["event"] === "peer:identify" && l["peerId"] === js.peerId)
        expect(String(identified["agentVersion"])).toMatch(/^js-libp2p\//)

        // short-lived commands against js, concurrently; plus one that must fail (wrong peer id)
        const wrongId = PeerId.toString(PeerId.fromPrivateKey(yield* Keys.generate("Ed25519")))
        const [ping, ident, failed] = yield* Effect.all([
          runCli(["ping", js.addr, "--count", "2", "--json"]),
          runCli(["identify", js.addr, "--json"]),
          runCli(["ping", js.addr.replace(js.peerId, wrongId), "--json"])
        ], { concurrency: "unbounded" })

        expect(ping.exit).toEqual({ code: 0, signal: null })
        expect(ping.bad).toEqual([])
        expect(ping.lines).toHaveLength(2)
        for (const line of ping.lines) {
          expect(line["event"]).toBe("ping")
          expect(line["peerId"]).toBe(js.peerId)
          expect(typeof line["rttMs"]).toBe("number")
          expect(line["rttMs"] as number).toBeGreaterThan(0)
          expect(line["rttMs"] as number).toBeLessThan(10_000)
        }

        expect(ident.exit).toEqual({ code: 0, signal: null })
        expect(ident.bad).toEqual([])
        expect(ident.lines).toHaveLength(1)
        const info = ident.lines[0]!
        expect(info["event"]).toBe("identify")
        expect(info["peerId"]).toBe(js.peerId)
        expect(String(info["agentVersion"])).toMatch(/^js-libp2p\//)
        expect(info["protocolVersion"]).toBe("ipfs/0.1.0")
        expect(info["protocols"]).toEqual(expect.arrayContaining(["/ipfs/ping/1.0.0", "/ipfs/id/1.0.0", "/echo/1.0.0"]))
        expect(info["listenAddrs"]).toContain(bareText(js.addr))
        expect(String(info["observedAddr"])).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/[1-9]/)

        // §7: on failure, an error line and a non-zero exit
        expect(failed.exit.code).not.toBe(0)
        expect(failed.exit.code).not.toBeNull()
        expect(failed.bad).toEqual([])
        expect(failed.lines).toHaveLength(1)
        expect(failed.lines[0]!["event"]).toBe("error")
        const error = failed.lines[0]!["error"] as Record<string, unknown>
        expect(error["_tag"]).toBe("DialError")
        expect(String(error["message"])).toMatch(/PeerIdMismatch/)

        // SIGTERM: the node closes everything and exits 0; js sees it go
        const mark = yield* js.eventCount
        yield* node.signal("SIGTERM")
        const exit = yield* node.exit.pipe(Effect.timeout("10 seconds"))
        expect(exit).toEqual({ code: 0, signal: null })
        expect(node.bad).toEqual([])
        yield* js.awaitEvent(JsPeer.isEvent("peer:disconnect", { peerId: peerId as string }), {
          after: mark,
          timeout: "10 seconds"
        })
      }),
    90_000
  )

  it.live(
    "websockets + unix transports, TLS and mplex chosen by --security/--muxer (ARCHITECTURE §7): js pings the CLI node over /tcp, /ws and /unix with tls+mplex and noise+yamux",
    () =>
      Effect.gen(function*() {
        const sock = `/tmp/effect-libp2p-cli-${process.pid}-${Date.now()}.sock`
        const node = yield* spawnCli([
          "node",
          "--listen",
          "/ip4/127.0.0.1/tcp/0",
          "--listen",
          "/ip4/127.0.0.1/tcp/0/ws",
          "--listen",
          `/unix${sock}`,
          "--security",
          "tls,noise",
          "--muxer",
          "mplex,yamux",
          "--json"
        ])
        const listening = yield* node.awaitLine(() => true)
        expect(listening["event"]).toBe("listening")
        const addrs = listening["addrs"] as Array<string>
        expect(addrs).toHaveLength(3)
        expect(addrs[1]).toMatch(/\/tcp\/[1-9][0-9]*\/ws\/p2p\//)
        expect(addrs[2]).toMatch(/^\/unix\//)
        const peerId = listening["peerId"] as string
        // js speaking only TLS + mplex, and js speaking only Noise + Yamux: the CLI node serves both
        const [tlsJs, noiseJs] = yield* Effect.all([
          JsPeer.start({ transports: ["tcp", "websockets"], encrypters: ["tls"], muxers: ["mplex"] }),
          JsPeer.start({ transports: ["tcp", "websockets"], encrypters: ["noise"], muxers: ["yamux"] })
        ], { concurrency: 2 })
        for (const js of [tlsJs, noiseJs]) {
          for (const addr of addrs) {
            const dialed = yield* js.dial(addr)
            expect(dialed.peerId).toBe(peerId)
            const pinged = yield* js.ping({ addr }, { count: 1, mode: "stream" })
            expect(pinged.rtts).toHaveLength(1)
            yield* js.hangup(peerId)
          }
        }
        // and our short-lived client with the same flags dials js over TLS + mplex
        const ping = yield* runCli(["ping", tlsJs.addr, "--security", "tls", "--muxer", "mplex", "--json"])
        expect(ping.exit).toEqual({ code: 0, signal: null })
        expect(ping.lines.map((l) => l["event"])).toEqual(["ping"])
        // an unknown name is a usage error with the §7 error line
        const bad = yield* runCli(["ping", tlsJs.addr, "--muxer", "spdy", "--json"])
        expect(bad.exit.code).not.toBe(0)
        expect(bad.lines[0]?.["event"]).toBe("error")
        yield* node.signal("SIGTERM")
        expect((yield* node.exit).code).toBe(0)
      }),
    120_000
  )
})
