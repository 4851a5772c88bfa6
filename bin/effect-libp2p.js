#!/usr/bin/env node
// The `effect-libp2p` command: runs the CLI in this process, so signals reach it.
// Installed from npm it runs the build (dist/src/cli/main.js); in a checkout
// without a build (`npm run build`), the TypeScript source through bin/start.js,
// which checks first that this Node runs it (>= 22.19: type stripping, outside
// node_modules only) and says what to do otherwise.
import { existsSync } from "node:fs"

const built = new URL("../dist/src/cli/main.js", import.meta.url)
await import(existsSync(built) ? built.href : new URL("./start.js", import.meta.url).href)
