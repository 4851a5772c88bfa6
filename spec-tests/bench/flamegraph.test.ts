/**
 * bench/flamegraph.ts (issue 20 §5, a profile a person can read): the call
 * tree of a V8 `.cpuprofile` merged by function along each path, idle time
 * left out, and the SVG boxes sized by it.
 */
import { describe, expect, it } from "vitest"
import type { Profile } from "../../bench/cpuprofile.ts"
import * as Flamegraph from "../../bench/flamegraph.ts"

const frame = (functionName: string, url = "") => ({ functionName, url, lineNumber: 0, columnNumber: 0 })

// (root) → main → a → c ; (root) → main → b ; (root) → (idle)
const profile: Profile = {
  nodes: [
    { id: 1, callFrame: frame("(root)"), children: [2, 6] },
    { id: 2, callFrame: frame("main", "file:///x/src/main.ts"), children: [3, 4] },
    { id: 3, callFrame: frame("a"), children: [5] },
    { id: 4, callFrame: frame("b") },
    { id: 5, callFrame: frame("c") },
    { id: 6, callFrame: frame("(idle)") }
  ],
  samples: [5, 5, 3, 4, 6, 6, 6],
  timeDeltas: [1000, 1000, 1000, 1000, 1000, 1000, 1000],
  startTime: 0,
  endTime: 7000
}

describe("flame graph of a cpuprofile", () => {
  it("sums each path's time into its frames, callees nested, idle left out", () => {
    const { idleUs, root } = Flamegraph.tree(profile)
    expect(idleUs).toBe(3000)
    expect(root.us).toBe(4000)
    const main = [...root.children.values()]
    expect(main.map((f) => [f.name, f.us])).toEqual([["main", 4000]])
    const under = [...main[0]!.children.values()].map((f) => [f.name, f.us])
    expect(under).toEqual([["a", 3000], ["b", 1000]])
    expect([...main[0]!.children.values()][0]!.children.get("c@")?.us).toBe(2000)
  })

  it("draws one box per frame, as wide as its share of the busy time, with its time in the tooltip", () => {
    const svg = Flamegraph.render(Flamegraph.tree(profile), "t")
    const widths = new Map(
      [...svg.matchAll(/<title>(\S+)[^<]*<\/title><rect [^>]*width="([\d.]+)"/g)].map((m) => [m[1], Number(m[2])])
    )
    expect(widths.get("all")).toBe(1600)
    expect(widths.get("main")).toBe(1600)
    expect(widths.get("a")).toBe(1200)
    expect(widths.get("b")).toBe(400)
    expect(widths.get("c")).toBe(800)
    expect(svg).toContain("idle 0.00 s left out")
    expect(svg).toMatch(/<title>a — 3\.0 ms, 75\.00 %<\/title>/)
  })
})
