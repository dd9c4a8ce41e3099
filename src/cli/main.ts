import { Command, CommanderError } from 'commander';
import { ConfigError, describeError, HubcrawlError } from '../core/errors.js';
import { TOOL_VERSION } from '../core/version.js';

/** Exit codes are part of the contract (README "Exit codes"). */
export const EXIT = { ok: 0, itemsFailed: 1, usage: 2, aborted: 3 } as const;

function buildProgram(): Command {
  const program = new Command('hubcrawl')
    .description(
      'Crawl Docker Hub and OCI registries for Debian-derived images, stream every layer through an\n' +
        'indicator analyzer (the XZ backdoor set built in), and record findings in SQLite.',
    )
    .version(TOOL_VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  return program;
}

/** Runs the CLI with `argv` (without node and script) and returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    process.stderr.write(`hubcrawl: ${describeError(err)}\n`);
    if (err instanceof ConfigError) return EXIT.usage;
    if (err instanceof HubcrawlError) return EXIT.aborted;
    return EXIT.aborted;
  }
}
