#!/usr/bin/env node
// The `effect-libp2p` command: runs the CLI (src/cli/main.ts) in this process, so signals reach it.
import "../src/cli/main.ts"
