import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { extract } from "../../conformance/extract.ts"
import { check, loadInventory, loadReview } from "../../conformance/inventory.ts"
import { build, markdown } from "../../conformance/report.ts"

const fixture = `---
title: front matter is not read
---
# A spec

The key words "MUST", "MUST NOT", "SHOULD" in this document are to be interpreted as described in RFC 2119.

## Table of Contents
- [Wire Format](#wire-format) MUST not be read

## Wire Format

Frames MUST be length-prefixed. Readers SHOULD NOT buffer more than one frame. Nothing here is normative.

\`\`\`
code MUST be skipped
\`\`\`

- a list item MAY carry extensions
- another one must be read in lower case

## Wire Format

A second section with the same heading MUST get its own anchor.
`

describe("conformance inventory (issue 21)", () => {
  it("extracts each normative sentence with a stable id: spec, section anchor, ordinal", () => {
    const clauses = extract("demo", fixture)
    expect(clauses.map((c) => [c.id, c.level, c.informal])).toEqual([
      ["demo:wire-format:1", "MUST", false],
      ["demo:wire-format:2", "SHOULD NOT", false],
      ["demo:wire-format:3", "MAY", false],
      ["demo:wire-format:4", "MUST", true],
      ["demo:wire-format-1:1", "MUST", false]
    ])
    expect(clauses[0]!.text).toBe("Frames MUST be length-prefixed.")
  })

  it("the committed inventory and review are consistent with the tests' claims", () => {
    expect(check(loadInventory(), loadReview())).toEqual([])
  })

  it("a test that claims a clause id that does not exist is reported", () => {
    const inventory = loadInventory()
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "conformance-"))
    const file = path.join(dir, "bogus.test.ts")
    // the id is assembled so that this file does not claim it itself
    const bogus = ["noise", "no-such-section", "1"].join(":")
    fs.writeFileSync(file, `it("${bogus} is claimed", () => {})\n`)
    try {
      const problems = check(inventory, {}, [file])
      expect(problems).toHaveLength(1)
      expect(problems[0]!.message).toContain(bogus)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("statuses come from the test run: passed → passing, any failed → failing, none → untested, review → not-applicable", () => {
    const clauses = extract("demo", fixture)
    const inventory = {
      specs: [{
        id: "demo",
        path: "x.md",
        title: "Demo",
        ships: true,
        repo: "o/r",
        commit: "0".repeat(40),
        url: "https://example"
      }],
      clauses
    }
    const run = {
      startTime: 0,
      testResults: [{
        name: path.resolve("spec-tests/demo.test.ts"),
        assertionResults: [
          {
            title: "frames [demo:wire-format:1]",
            fullName: "frames [demo:wire-format:1]",
            status: "passed",
            location: { line: 3, column: 1 }
          },
          { title: "buffer [demo:wire-format:2]", fullName: "buffer [demo:wire-format:2]", status: "passed" },
          {
            title: "buffer again [demo:wire-format:2]",
            fullName: "buffer again [demo:wire-format:2]",
            status: "failed"
          },
          { title: "skipped [demo:wire-format:4]", fullName: "skipped [demo:wire-format:4]", status: "skipped" }
        ]
      }]
    }
    const report = build(inventory, {
      "demo:wire-format:3": { status: "not-applicable", reason: "we send no extensions at all" }
    }, run)
    const status = Object.fromEntries(report.specs[0]!.clauses.map((r) => [r.clause.id, r.status]))
    expect(status).toEqual({
      "demo:wire-format:1": "passing",
      "demo:wire-format:2": "failing",
      "demo:wire-format:3": "not-applicable",
      "demo:wire-format:4": "untested",
      "demo:wire-format-1:1": "untested"
    })
    expect(report.headline.MUST).toMatchObject({ applicable: 3, passing: 1, untested: 2 })
    expect(markdown(report, path.resolve("conformance"))).toContain("../spec-tests/demo.test.ts#L3")
  })
})
