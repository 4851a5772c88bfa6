/**
 * Pubsub on the command line (ARCHITECTURE.md §7, docs/CLI.md), each CLI node
 * in its own process: `node --pubsub <router> --subscribe <topic>` prints
 * `subscribed` and `message` lines and publishes what stdin asks
 * (`{"publish":…}` → `published`; a malformed line is an error line, the
 * node keeps running); `pubsub publish` is a one-shot publisher; bytes that
 * are not UTF-8 arrive as `dataBase64` (published by an in-process node, as
 * stdin only carries text).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as PeerId from "../../src/core/PeerId.ts"
import * as Gossipsub from "../../src/protocols/pubsub/gossipsub/Gossipsub.ts"
import { ma } from "../support/multiaddr.ts"
import { tcpPubsubNode, waitFor } from "../support/pubsub.ts"
import { type Cli, runCli, spawnCli, stop } from "./support.ts"

type Router = "gossipsub" | "floodsub"

/** A CLI node subscribed to `t`, with stdin open; its `listening` line's peer id and first address. */
const pubsubCli = (router: Router, extra: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const cli = yield* spawnCli(
      [
        "node",
        "--pubsub",
        router,
        "--subscribe",
        "t",
        "--ephemeral",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        ...extra,
        "--json"
      ],
      { stdin: true }
    )
    const listening = yield* cli.awaitLine((l) => l["event"] === "listening")
    yield* cli.awaitLine((l) => l["event"] === "subscribed" && l["topic"] === "t")
    return { cli, peerId: listening["peerId"] as string, addr: (listening["addrs"] as Array<string>)[0]! }
  })

const publishLine = (topic: string, data: string) => `${JSON.stringify({ publish: { topic, data } })}\n`

const message = (cli: Cli, data: string) => cli.awaitLine((l) => l["event"] === "message" && l["data"] === data)

/** Publish from `a`'s stdin until its `published` line reports a peer (the subscription may still be on its way). */
const publishUntilPeer = (a: Cli, data: string) =>
  Effect.gen(function*() {
    for (let i = 0;; i++) {
      yield* a.write(publishLine("t", data))
      const line = yield* a.awaitLine((l) => l["event"] === "published" && (l["peers"] as number) >= 1, "1 second")
        .pipe(Effect.option)
      if (line._tag === "Some" || i >= 20) return line
    }
  })

describe("CLI pubsub (ARCHITECTURE §7, docs/CLI.md)", () => {
  for (const router of ["gossipsub", "floodsub"] as const) {
    it.live(
      `§7 node --pubsub ${router}: a stdin publish on one node is a message line on the other; a bad line is an error line`,
      () =>
        Effect.gen(function*() {
          const a = yield* pubsubCli(router)
          const b = yield* pubsubCli(router, ["--dial", a.addr])
          // a malformed stdin line: an error line, the node keeps running
          yield* a.cli.write("this is not json\n")
          const bad = yield* a.cli.awaitLine((l) => l["event"] === "error")
          expect((bad["error"] as Record<string, unknown>)["_tag"]).toBe("StdinError")
          yield* a.cli.write(`${JSON.stringify({ publish: { topic: "t" } })}\n`)
          yield* a.cli.awaitLine((l) =>
            l["event"] === "error" && a.cli.lines.filter((x) => x["event"] === "error").length === 2
          )
          const published = yield* publishUntilPeer(a.cli, "hello, wörld")
          expect(published._tag).toBe("Some")
          const got = yield* message(b.cli, "hello, wörld")
          expect(got).toMatchObject({ event: "message", topic: "t", from: a.peerId })
          expect(got["seqno"]).toMatch(/^[0-9a-f]+$/)
          expect(got).not.toHaveProperty("dataBase64")
          expect(b.cli.bad).toEqual([])
          expect(a.cli.bad).toEqual([])
          expect((yield* stop(a.cli)).code).toBe(0)
          expect((yield* stop(b.cli)).code).toBe(0)
        }),
      90_000
    )

    it.live(
      `§7 pubsub publish --router ${router}: a one-shot publish reaches a running node, then exits 0`,
      () =>
        Effect.gen(function*() {
          const a = yield* pubsubCli(router)
          const out = yield* runCli([
            "pubsub",
            "publish",
            "t",
            "one shot",
            "--bootstrap",
            a.addr,
            "--router",
            router,
            "--json"
          ])
          expect(out.exit.code, out.stderr).toBe(0)
          expect(out.lines).toEqual([{ event: "published", topic: "t", peers: 1 }])
          const got = yield* message(a.cli, "one shot")
          expect(got["topic"]).toBe("t")
          expect(got["from"]).not.toBe(a.peerId)
          expect((yield* stop(a.cli)).code).toBe(0)
        }),
      90_000
    )
  }

  it.live(
    "§7 pubsub publish: no peer in the topic within --timeout is a NoTopicPeers line and exit 1",
    () =>
      Effect.gen(function*() {
        const a = yield* pubsubCli("gossipsub")
        const out = yield* runCli([
          "pubsub",
          "publish",
          "other",
          "x",
          "--bootstrap",
          a.addr,
          "--timeout",
          "1s",
          "--json"
        ])
        expect(out.exit.code).toBe(1)
        expect(out.lines).toEqual([{
          event: "error",
          error: { _tag: "NoTopicPeers", message: "no peer subscribed to other within 1s" }
        }])
        expect((yield* stop(a.cli)).code).toBe(0)
      }),
    90_000
  )

  it.live(
    "§7 usage errors: --subscribe without --pubsub, an unknown router (exit 2, UsageError)",
    () =>
      Effect.gen(function*() {
        for (
          const args of [
            ["node", "--subscribe", "t", "--ephemeral", "--json"],
            ["node", "--pubsub", "meshsub", "--ephemeral", "--json"],
            ["pubsub", "publish", "t", "x", "--bootstrap", "/ip4/127.0.0.1/tcp/1", "--router", "nope", "--json"]
          ]
        ) {
          const out = yield* runCli(args)
          expect(out.exit.code, args.join(" ")).toBe(2)
          expect(out.lines).toHaveLength(1)
          expect(out.lines[0]).toMatchObject({ event: "error", error: { _tag: "UsageError" } })
        }
      }),
    90_000
  )

  it.live("§7 node --pubsub: bytes that are not UTF-8 arrive as dataBase64", () =>
    Effect.gen(function*() {
      const a = yield* pubsubCli("gossipsub")
      const publisher = yield* tcpPubsubNode(Gossipsub.layer())
      yield* publisher.host.dial(ma(a.addr))
      yield* waitFor(() => publisher.pubsub.peers("t").length >= 1)
      const bytes = new Uint8Array([0xff, 0xfe, 0x00, 0x80])
      yield* publisher.pubsub.publish("t", bytes)
      const got = yield* a.cli.awaitLine((l) => l["event"] === "message")
      expect(got).toMatchObject({
        topic: "t",
        from: PeerId.toString(publisher.host.peerId),
        dataBase64: Buffer.from(bytes).toString("base64")
      })
      expect(got).not.toHaveProperty("data")
      expect((yield* stop(a.cli)).code).toBe(0)
    }), 90_000)
})
