/**
 * Clause extraction: every normative statement of a spec's Markdown, with a
 * stable id `<spec>:<section-slug>:<ordinal>` (the ordinal counts the
 * normative sentences of that section, in order).
 *
 * A sentence is normative when it carries an RFC 2119 keyword. Specs that
 * capitalise them (noise, tls, autonat-v2, …) are read by the capitals; many
 * libp2p specs (kad-dht, gossipsub, circuit-v2) state requirements in lower
 * case, so lower-case "must", "must not", "should", "should not", "shall" and
 * "required" count too and are marked `informal` (lower-case "may" does not:
 * it is mostly prose). The RFC 2119 boilerplate sentence is skipped. Code
 * blocks, HTML comments, front matter, link definitions and the table of
 * contents are not read.
 */

export type Level = "MUST" | "MUST NOT" | "SHOULD" | "SHOULD NOT" | "MAY"

export interface Clause {
  readonly id: string
  readonly spec: string
  readonly section: string
  readonly heading: string
  readonly level: Level
  readonly informal: boolean
  readonly text: string
}

const upper = /\b(MUST NOT|MUST|SHALL NOT|SHALL|REQUIRED|SHOULD NOT|SHOULD|NOT RECOMMENDED|RECOMMENDED|MAY|OPTIONAL)\b/g
const lower = /\b(must not|must|shall not|shall|required|should not|should)\b/g

const levelOf = (keyword: string): Level => {
  const k = keyword.toUpperCase()
  if (k === "MUST NOT" || k === "SHALL NOT") return "MUST NOT"
  if (k === "MUST" || k === "SHALL" || k === "REQUIRED") return "MUST"
  if (k === "SHOULD NOT" || k === "NOT RECOMMENDED") return "SHOULD NOT"
  if (k === "SHOULD" || k === "RECOMMENDED") return "SHOULD"
  return "MAY"
}

const rank: Record<Level, number> = { "MUST NOT": 5, MUST: 4, "SHOULD NOT": 3, SHOULD: 2, MAY: 1 }

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to dashes. */
export const slug = (heading: string): string =>
  heading
    .toLowerCase()
    .replace(/<[^>]*>/g, "")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .trim()
    .replace(/\s/g, "-")

/** Inline Markdown reduced to the text a reader sees. */
const plain = (s: string): string =>
  s
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/\[([^\]]*)\]\[[^\]]*\]/g, "$1")
    .replace(/[*_]{1,3}([^*_]+)[*_]{1,3}/g, "$1")
    .replace(/\s+/g, " ")
    .trim()

/** Splits a block of text into sentences (a full stop, ! or ? followed by a space and a capital, quote or backtick). */
const sentences = (block: string): Array<string> =>
  block
    .split(/(?<=[.!?])\s+(?=[A-Z`"([])/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0)

const boilerplate = /key words .*(are to be interpreted|in this document)/i

/** The blocks of a Markdown document, each with the heading it sits under. */
const blocks = (markdown: string): Array<{ heading: string; anchor: string; text: string }> => {
  const out: Array<{ heading: string; anchor: string; text: string }> = []
  const seen = new Map<string, number>()
  let heading = "(preamble)"
  let anchor = "preamble"
  let inCode = false
  let inComment = false
  let inToc = false
  let current: Array<string> = []
  const flush = () => {
    if (current.length > 0) out.push({ heading, anchor, text: plain(current.join(" ")) })
    current = []
  }
  let body = markdown.replace(/\r\n/g, "\n")
  if (body.startsWith("---\n")) {
    const end = body.indexOf("\n---", 4)
    if (end > 0) body = body.slice(end + 4)
  }
  for (const raw of body.split("\n")) {
    const line = raw.trimEnd()
    if (/^\s*(```|~~~)/.test(line)) {
      flush()
      inCode = !inCode
      continue
    }
    if (inCode) continue
    if (inComment) {
      if (line.includes("-->")) inComment = false
      continue
    }
    if (line.includes("<!--") && !line.includes("-->")) {
      flush()
      inComment = true
      continue
    }
    const h = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line)
    if (h) {
      flush()
      heading = plain(h[2]!)
      const base = slug(h[2]!)
      const n = seen.get(base) ?? 0
      seen.set(base, n + 1)
      anchor = n === 0 ? base : `${base}-${n}`
      inToc = /^(table of contents|contents)$/i.test(heading)
      continue
    }
    if (inToc) continue
    if (/^\s*\[[^\]]+\]:\s*\S+/.test(line)) continue
    if (line.trim() === "") {
      flush()
      continue
    }
    // a list item or a table row starts a block of its own
    if (/^\s*([-*+]|\d+[.)])\s+/.test(line) || /^\s*\|/.test(line)) flush()
    if (/^\s*\|?\s*:?-{3,}/.test(line)) continue
    current.push(line.replace(/^\s*([-*+]|\d+[.)])\s+/, "").replace(/^\s*>\s?/, "").replace(/\|/g, " "))
  }
  flush()
  return out
}

export const extract = (spec: string, markdown: string): Array<Clause> => {
  const clauses: Array<Clause> = []
  const ordinals = new Map<string, number>()
  for (const block of blocks(markdown)) {
    for (const sentence of sentences(block.text)) {
      if (boilerplate.test(sentence)) continue
      const formal = [...sentence.matchAll(upper)].map((m) => m[1]!)
      const informal = formal.length === 0 ? [...sentence.matchAll(lower)].map((m) => m[1]!) : []
      const keywords = formal.length > 0 ? formal : informal
      if (keywords.length === 0) continue
      const level = keywords.map(levelOf).reduce((a, b) => (rank[b] > rank[a] ? b : a))
      const n = (ordinals.get(block.anchor) ?? 0) + 1
      ordinals.set(block.anchor, n)
      clauses.push({
        id: `${spec}:${block.anchor}:${n}`,
        spec,
        section: block.anchor,
        heading: block.heading,
        level,
        informal: formal.length === 0,
        text: sentence.length > 600 ? `${sentence.slice(0, 597)}...` : sentence
      })
    }
  }
  return clauses
}
