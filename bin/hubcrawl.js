#!/bin/sh
//bin/sh -c :; hubcrawl_malloc=glibc.malloc.mmap_threshold=4194304:glibc.malloc.trim_threshold=16777216; export GLIBC_TUNABLES="${GLIBC_TUNABLES:+$hubcrawl_malloc:}${GLIBC_TUNABLES-$hubcrawl_malloc}"; exec node --initial-heap-size=64 --max-semi-space-size=2 "$0" "$@"
// The line above is shell and JavaScript at once: /bin/sh runs it (a no-op, the malloc settings, then exec), Node
// reads a comment. It starts Node with V8 flags and malloc settings in a way every POSIX sh understands,
// where `#!/usr/bin/env -S node …` fails on BusyBox (Alpine) and the BSDs, and Node refuses
// --initial-heap-size in NODE_OPTIONS. GLIBC_TUNABLES also reaches the processes Node starts (the
// `zstd` decoder when chosen), which is harmless. `node bin/hubcrawl.js` runs without them: correct, slower on large layers.
//
// Why (docs/benchmarks.md, "launcher heap flag" and "fresh memory"): every layer chunk a source hands the
// analyzer (an HTTP body's, a file's) is a fresh buffer, so a layer churns through memory as fast as it
// streams.
// - --initial-heap-size=64: with V8's default 8 MB starting heap those buffers set off a full
//   mark-compact about every 50 MB of input, a quarter of a zstd layer's CPU.
// - --max-semi-space-size=2: a small young generation is scavenged, and its dead chunks freed, every
//   2 MB instead of every 16, so malloc hands the same memory out again sooner. Memory a process has
//   not touched before costs a page fault per 4 KiB, about 11 us each on the benchmark VM.
// - GLIBC_TUNABLES (glibc only; musl ignores it): chunks under 4 MiB come from the heap rather than
//   from mmap, and up to 16 MiB of freed heap is kept rather than given back, so each layer reuses the
//   last one's pages instead of faulting in new ones. A GLIBC_TUNABLES of your own goes after these:
//   glibc takes the last value of a tunable, so yours win where they overlap and the rest still apply
//   (some container images set one for other reasons, glibc.pthread.rseq=0 say). An empty one turns
//   these off.
// scripts/lib/launcher.ts reads this line for the benchmarks, the demo and the end-to-end tests.
//
// The compiled CLI lives in dist/ (built by `npm run build`, run by `npm ci` via `prepare`).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
