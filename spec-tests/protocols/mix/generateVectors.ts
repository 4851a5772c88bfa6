/**
 * Writes `spec-tests/vectors/mix/sphinx-vectors.json` from `vectors.ts` `build()`.
 * Run: `npx node spec-tests/protocols/mix/generateVectors.ts`. The output is
 * deterministic: rerunning it must leave the committed file unchanged
 * (`Vectors.test.ts` checks that).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { VECTORS_DIR } from "../../support/vectors.ts"
import { build } from "./vectors.ts"

const file = path.join(VECTORS_DIR, "mix", "sphinx-vectors.json")
fs.mkdirSync(path.dirname(file), { recursive: true })
fs.writeFileSync(file, JSON.stringify(build(), null, 2) + "\n")
process.stdout.write(`wrote ${file}\n`)
