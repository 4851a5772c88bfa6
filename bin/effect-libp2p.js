#!/usr/bin/env node
// The `effect-libp2p` command and `npm start`: runs the CLI (src/cli/main.ts) in this process, so signals reach it.
// The CLI is TypeScript run by Node's type stripping, so check the Node version first and say what to do:
// on an older Node the import below would fail with "Unknown file extension .ts" (ERR_UNKNOWN_FILE_EXTENSION).
const [major, minor] = process.versions.node.split(".").map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  const message = `effect-libp2p needs Node.js >= 22.19 (it runs its TypeScript sources directly); ` +
    `this is Node.js ${process.version} (${process.execPath}). ` +
    `Install Node.js 22.19 or later (24 recommended), or in a checkout run \`npm ci\` with the dev dependencies: ` +
    `\`npm start\` then uses Node 24 from the project's \`node\` devDependency (\`npm ci --omit=dev\` leaves it out).`
  const json = process.argv.slice(2).some((a) => a === "--json" || a === "--json=true")
  if (json) process.stdout.write(JSON.stringify({ event: "error", error: { _tag: "UnsupportedNode", message } }) + "\n")
  process.stderr.write(`error: UnsupportedNode: ${message}\n`)
  process.exitCode = 1
} else {
  await import("../src/cli/main.ts")
}
