#!/usr/bin/env node
// `npm start` (and the `effect-libp2p` bin when there is no build): runs the CLI's TypeScript source
// (src/cli/main.ts) in this process, so signals reach it. Node runs it by type stripping, on Node >= 22.19
// (`engines`). Check that first and say what to do: an older Node would stop at the import below with
// "Unknown file extension .ts" (ERR_UNKNOWN_FILE_EXTENSION), e.g. after `npm ci --omit=dev`, which leaves
// out the project's own Node 24 (the `node` devDependency) so that the machine's Node runs `npm start`.
const [major, minor] = process.versions.node.split(".").map(Number)
if (major < 22 || (major === 22 && minor < 19)) {
  const message = `effect-libp2p needs Node.js >= 22.19 to run from its TypeScript sources; ` +
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
