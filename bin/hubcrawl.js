#!/bin/sh
//bin/sh -c :; exec node --initial-heap-size=64 "$0" "$@"
// The line above is shell and JavaScript at once: /bin/sh runs it (a no-op, then exec), Node reads a
// comment. It starts Node with a V8 flag in a way every POSIX sh understands,
// where `#!/usr/bin/env -S node …` fails on BusyBox (Alpine) and the BSDs, and Node refuses this flag
// in NODE_OPTIONS. `node bin/hubcrawl.js` runs without the flag: correct, slower on large layers.
//
// Why the flag: every layer chunk a source hands the analyzer (an HTTP body's, a file's) is a fresh
// buffer, and with V8's default 8 MB starting heap those buffers set off a full mark-compact about every
// 50 MB of input: 20-40 per GB, a quarter of a zstd layer's CPU. Starting the heap at 64 MB removes them
// (docs/benchmarks.md, "launcher heap flag"). scripts/lib/launcher.ts reads the flags from line 2 for
// the benchmarks, the demo and the end-to-end tests.
//
// The compiled CLI lives in dist/ (built by `npm run build`, run by `npm ci` via `prepare`).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
