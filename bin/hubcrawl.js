#!/usr/bin/env -S node --initial-heap-size=64
// Thin launcher: the compiled CLI lives in dist/ (built by `npm run build`, run by `npm ci` via `prepare`).
//
// Why the V8 flag: every layer chunk a source hands the analyzer (an HTTP body's, a file's) is a fresh
// buffer, and with V8's default 8 MB starting heap those buffers set off a full mark-compact about every
// 50 MB of input: 20-40 per GB, a quarter of a zstd layer's CPU. Starting the heap at 64 MB removes them
// (docs/benchmarks.md, "launcher heap flag"). Node refuses this flag in NODE_OPTIONS, hence the shebang;
// `node bin/hubcrawl.js` runs without it, correct but slower on large layers. scripts/lib/launcher.ts
// reads the flags from this line for the benchmarks, the demo and the end-to-end tests.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
