/**
 * A strict reader of the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format):
 * every line is a `# HELP`, a `# TYPE` or a sample; a malformed line, a TYPE
 * after a family's samples, or a histogram whose buckets are not cumulative
 * or do not end in `+Inf` equal to `_count` is an error.
 */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Exposition {
  readonly samples: ReadonlyArray<Sample>
  readonly types: ReadonlyMap<string, string>
  readonly help: ReadonlyMap<string, string>
}

const NAME = "[a-zA-Z_:][a-zA-Z0-9_:]*"
const sampleLine = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`)
const labelPair = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)/

const parseValue = (v: string): number => {
  if (v === "+Inf") return Infinity
  if (v === "-Inf") return -Infinity
  if (v === "NaN") return NaN
  const n = Number(v)
  if (v.trim() === "" || Number.isNaN(n)) throw new Error(`bad sample value ${v}`)
  return n
}

const parseLabels = (text: string | undefined): Record<string, string> => {
  const labels: Record<string, string> = {}
  let rest = text ?? ""
  while (rest.length > 0) {
    const m = labelPair.exec(rest)
    if (m === null) throw new Error(`bad labels {${text}}`)
    if (m[1]! in labels) throw new Error(`duplicate label ${m[1]}`)
    labels[m[1]!] = m[2]!.replace(/\\n/g, "\n").replace(/\\"/g, "\"").replace(/\\\\/g, "\\")
    rest = rest.slice(m[0].length)
  }
  return labels
}

const familyOf = (name: string, types: ReadonlyMap<string, string>): string => {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (name.endsWith(suffix)) {
      const base = name.slice(0, -suffix.length)
      if (types.get(base) === "histogram" || types.get(base) === "summary") return base
    }
  }
  return name
}

export const parse = (text: string): Exposition => {
  if (text.length > 0 && !text.endsWith("\n")) throw new Error("the exposition must end with a newline")
  const samples: Array<Sample> = []
  const types = new Map<string, string>()
  const help = new Map<string, string>()
  const seen = new Set<string>()
  for (const line of text.split("\n").slice(0, -1)) {
    if (line.startsWith("# HELP ")) {
      const m = new RegExp(`^# HELP (${NAME}) (.*)$`).exec(line)
      if (m === null) throw new Error(`bad HELP line: ${line}`)
      help.set(m[1]!, m[2]!)
    } else if (line.startsWith("# TYPE ")) {
      const m = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`).exec(line)
      if (m === null) throw new Error(`bad TYPE line: ${line}`)
      if (seen.has(m[1]!)) throw new Error(`TYPE after samples of ${m[1]}`)
      if (types.has(m[1]!)) throw new Error(`second TYPE for ${m[1]}`)
      types.set(m[1]!, m[2]!)
    } else if (line.startsWith("#") || line === "") {
      continue
    } else {
      const m = sampleLine.exec(line)
      if (m === null) throw new Error(`bad sample line: ${line}`)
      samples.push({ name: m[1]!, labels: parseLabels(m[2]), value: parseValue(m[3]!) })
      seen.add(familyOf(m[1]!, types))
    }
  }
  // histograms: cumulative buckets ending in +Inf == _count, per label set
  for (const [name, type] of types) {
    if (type !== "histogram") continue
    const series = new Map<string, Array<Sample>>()
    for (const s of samples) {
      if (s.name !== `${name}_bucket`) continue
      const { le, ...rest } = s.labels
      if (le === undefined) throw new Error(`${name}_bucket without le`)
      const key = JSON.stringify(rest)
      series.set(key, [...(series.get(key) ?? []), s])
    }
    for (const [key, buckets] of series) {
      for (let i = 1; i < buckets.length; i++) {
        if (parseValue(buckets[i]!.labels["le"]!) <= parseValue(buckets[i - 1]!.labels["le"]!)) {
          throw new Error(`${name}: le not increasing`)
        }
        if (buckets[i]!.value < buckets[i - 1]!.value) throw new Error(`${name}: buckets not cumulative`)
      }
      const last = buckets[buckets.length - 1]!
      if (last.labels["le"] !== "+Inf") throw new Error(`${name}: no +Inf bucket`)
      const count = samples.find((s) => s.name === `${name}_count` && JSON.stringify(s.labels) === key)
      if (count === undefined || count.value !== last.value) throw new Error(`${name}: _count differs from +Inf`)
    }
  }
  return { samples, types, help }
}

/** The sum of `name`'s samples whose labels include `labels`. */
export const value = (e: Exposition, name: string, labels: Record<string, string> = {}): number =>
  e.samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)
