/**
 * The status page (`GET /`, issue 16 item 3) in a real browser: Debian's
 * `chromium` driven by `playwright-core` (`.ci/run` installs the package). The
 * page shows the peers connected in the test, updates without a reload when
 * one more connects, and logs no console errors (a missing favicon would be
 * one). A screenshot is kept in `spec-tests/observability/artifacts/`
 * (git-ignored).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"
import { chromium } from "playwright-core"
import * as PeerId from "../../src/core/PeerId.ts"
import { tcpNode } from "../support/node.ts"
import { httpNode } from "./support.ts"

const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
const ARTIFACTS = fileURLToPath(new URL("./artifacts/", import.meta.url))

const browser = Effect.acquireRelease(
  Effect.promise(() => chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] })),
  (b) => Effect.promise(() => b.close())
)

describe("status page in headless Chromium", () => {
  it.live(
    "GET /: shows the connected peers, updates without reload when one more connects, no console errors",
    () =>
      Effect.gen(function*() {
        expect(Fs.existsSync(CHROMIUM), `${CHROMIUM} (Debian package chromium; .ci/run installs it)`).toBe(true)
        const a = yield* httpNode()
        const b = yield* tcpNode()
        const c = yield* tcpNode()
        // a stream that stays open while the page looks
        yield* a.registrar.handle("/test/hold/1.0.0", () => Effect.never)
        yield* b.host.newStream(a.addr, ["/test/hold/1.0.0"], { lazy: false })
        const problems: Array<string> = []
        const br = yield* browser
        const tab = yield* Effect.promise(() => br.newPage({ viewport: { width: 1280, height: 900 } }))
        tab.on("console", (m) => {
          if (m.type() === "error" || m.type() === "warning") problems.push(`console ${m.type()}: ${m.text()}`)
        })
        tab.on("pageerror", (e) => problems.push(`page error: ${e.message}`))
        tab.on("requestfailed", (r) => problems.push(`request failed: ${r.url()}`))
        tab.on("response", (r) => {
          if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`)
        })
        let navigations = 0
        tab.on("framenavigated", (f) => {
          if (f === tab.mainFrame()) navigations++
        })
        yield* Effect.promise(() => tab.goto(a.url, { waitUntil: "load" }))
        const bId = PeerId.toString(b.host.peerId)
        const cId = PeerId.toString(c.host.peerId)
        // identity, and the peer connected before the page loaded
        yield* Effect.promise(() =>
          tab.locator("#peer", { hasText: PeerId.toString(a.host.peerId) }).waitFor({ timeout: 10_000 })
        )
        yield* Effect.promise(() => tab.locator(`tr[data-peer="${bId}"]`).waitFor({ timeout: 10_000 }))
        expect(yield* Effect.promise(() => tab.locator(`tr[data-peer="${cId}"]`).count())).toBe(0)
        // one more peer connects: the table shows it without a reload
        yield* c.host.dial(a.addr)
        yield* Effect.promise(() => tab.locator(`tr[data-peer="${cId}"]`).waitFor({ timeout: 10_000 }))
        expect(navigations).toBe(1)
        const text = yield* Effect.promise(() => tab.locator("#conns").innerText())
        expect(text).toContain("/noise / /yamux/1.0.0")
        expect(text).toContain("/test/hold/1.0.0 (inbound)")
        expect(yield* Effect.promise(() => tab.locator("#nconns").innerText())).toBe("2")
        // the favicon is served (no 404 in the problems) and the chart is drawn
        const icon = yield* Effect.promise(() => tab.evaluate(() => fetch("/favicon.ico").then((r) => r.status)))
        expect(icon).toBe(200)
        yield* Effect.promise(() => tab.waitForTimeout(1_500))
        Fs.mkdirSync(ARTIFACTS, { recursive: true })
        yield* Effect.promise(() => tab.screenshot({ path: `${ARTIFACTS}status-page.png`, fullPage: true }))
        expect(problems).toEqual([])
      }),
    90_000
  )
})
