import { setFlagsFromString } from 'node:v8';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { ConfigError, describeError } from '../core/errors.js';
import { TOOL_VERSION } from '../core/version.js';
import { holdEarlySignals, releaseEarlySignals } from './early-signals.js';
import { EXIT } from './exit.js';
import { stdoutFailure, watchStandardStreams } from './std-streams.js';
import { cannotWriteStdout } from './write-result.js';

export { EXIT };

const collect = (value: string, previous: string[] = []) => [...previous, value];

function int(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

/** --db, --log-level and --quiet, on every command that touches a dataset. */
function common(cmd: Command, { config = false } = {}): Command {
  if (config) cmd.option('-c, --config <file>', 'config file (YAML or JSON); flags override it');
  return cmd
    .option('--db <file>', 'SQLite dataset (default ./hubcrawl.sqlite)')
    .addOption(
      new Option('--log-level <level>', 'log level of the JSON logs on stderr; debug adds stacks').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    )
    .option('-q, --quiet', 'only errors on stderr; no progress display');
}

/** Options shared by crawl and scan. */
function crawlOptions(cmd: Command): Command {
  return cmd
    .option(
      '--platform <os/arch>',
      'platform to analyze, as image indexes name it (GOARCH: linux/amd64, linux/arm64, linux/arm/v7, ' +
        'linux/386; not x86_64 or aarch64), repeatable (default: all)',
      collect,
    )
    .option('--ioc <file>', 'add an IOC set file to the built-in ones, repeatable', collect)
    .option('--no-builtin-iocs', 'leave the built-in XZ backdoor set out')
    .option('--concurrency <n>', 'items processed at once (default 4)', int('--concurrency', 1))
    .option('--layer-concurrency <n>', 'layers analyzed at once (default 2)', int('--layer-concurrency', 1))
    .option(
      '--max-pulls <n>',
      'counted pulls (Docker Hub manifest GETs) allowed in this invocation; a resumed run gets them anew',
      int('--max-pulls', 0),
    )
    .option(
      '--max-attempts <n>',
      'attempts per failed item across runs (default 3)',
      int('--max-attempts', 1),
    )
    .option('--hub-api <url>', 'Docker Hub web API base URL (default https://hub.docker.com)')
    .option('--registry-mirror <url>', 'registry base URL to use for docker.io (a mirror)')
    .option('--insecure-registry <host>', 'speak plain HTTP to this registry host, repeatable', collect)
    .option(
      '--docker-config <file>',
      'Docker client config with auths or credential helpers (default ~/.docker/config.json)',
    )
    .option('--debian-only', 'analyze upper layers only of images whose base layer is Debian-derived')
    .option('--hash-all-files', 'hash every regular file, not only IOC candidates (slower; richer rematch)');
}

/**
 * Commander's parse errors (`error: unknown option '--x'`, a bad `--format` choice, its "Did you mean"
 * on a line of its own) as every other error reads (docs/cli.md "Errors"): one line prefixed `hubcrawl:`,
 * here ending with where the usage is.
 */
export function usageError(commanderText: string, hint?: string): string {
  const text = commanderText
    .replace(/^error: /, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .join(' ')
    .replace(/\.$/, '');
  return `hubcrawl: ${text}${hint ? `; ${hint}` : ''}; run with --help for usage\n`;
}

/**
 * Adds a hint to this command's parse errors (usageError) for a mistake its users are known to make:
 * `hint` gets commander's message and returns the hint, or undefined for none. The message is all there is
 * to go by: commander's outputError hook gets the text, not the error and its code.
 */
function withUsageHint(cmd: Command, hint: (commanderText: string) => string | undefined): Command {
  return cmd.configureOutput({ outputError: (s, write) => write(usageError(s, hint(s))) });
}

/**
 * The hint for `report --config study.yml` (and stats, query, export): a study's config file given to a
 * command that only reads a dataset.
 */
const readsDataset =
  (command: string) =>
  (commanderText: string): string | undefined =>
    /^error: unknown option '(?:-c|--config)(?:=[^']*)?'/.test(commanderText)
      ? `${command} reads the dataset given with --db; config files are for crawl, scan and rematch`
      : undefined;

function buildProgram(setCode: (code: number) => void): Command {
  const program = new Command('hubcrawl')
    .description(
      'Crawl Docker Hub and OCI registries for Debian-derived images, stream every layer through an indicator ' +
        'analyzer (the XZ backdoor set CVE-2024-3094 is built in), and record every observation in SQLite.',
    )
    .version(TOOL_VERSION)
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(usageError(s)),
    })
    .addHelpText(
      'after',
      '\nExit codes: 0 done, 1 finished but some items failed, 2 usage or config error, 3 aborted (resumable).\n' +
        'Credentials: HUBCRAWL_DOCKERHUB_USERNAME / HUBCRAWL_DOCKERHUB_TOKEN, or ~/.docker/config.json auths.',
    );

  // Commands are loaded when they run: `--help`, `report` or `query` need not load the crawler's HTTP
  // stack, and start-up time is most of a small crawl's wall time.
  type CommandFn = (...a: unknown[]) => Promise<number>;
  const run =
    <M>(load: () => Promise<M>, pick: (m: M) => unknown) =>
    async (...args: unknown[]) =>
      setCode(await (pick(await load()) as CommandFn)(...args));

  crawlOptions(
    common(program.command('crawl').description('run or resume a crawl into the dataset'), { config: true }),
  )
    .option('--image <ref>', 'seed: an image by tag or digest, repeatable', collect)
    .option('--repo <repo>', 'seed: every tag of a repository, repeatable', collect)
    .option('--namespace <ns>', 'seed: every repository of a Docker Hub namespace, repeatable', collect)
    .option('--search <query>', 'seed: Docker Hub search hits, repeatable', collect)
    .option('--catalog <url>', "seed: every repository in a registry's _catalog, repeatable", collect)
    .option('--seeds <file>', 'seed file: one reference or repository per line, repeatable', collect)
    .option('--tags <regex>', 'only tags whose name matches')
    .option('--pushed-after <date>', 'only tags pushed at or after this date')
    .option('--pushed-before <date>', 'only tags pushed before this date')
    .option(
      '--max-tags <n>',
      'at most this many tags per repository: newest push first; tags without a push date after those, ' +
        'highest name first, digit runs compared as numbers (v10 before v9, 1.10 before 1.9)',
      int('--max-tags', 1),
    )
    .option('--fresh', 'start a new run even if the last one did not finish')
    .action(
      run(
        () => import('./commands/crawl.js'),
        (m) => m.crawlCommand,
      ),
    );

  crawlOptions(
    common(
      program.command('scan').description('one-off: analyze these images now and print a verdict each'),
      {
        config: true,
      },
    ),
  )
    .argument('<ref...>', 'image references (tag or digest)')
    .addOption(new Option('--format <format>', 'output').choices(['table', 'csv', 'jsonl']).default('table'))
    .option('--out <file>', 'write the output to a file instead of stdout')
    .action(
      run(
        () => import('./commands/scan.js'),
        (m) => m.scanCommand,
      ),
    );

  withUsageHint(
    common(program.command('report').description('evidence of affected images, as the publication CSV')),
    readsDataset('report'),
  )
    .addOption(new Option('--format <format>', 'output').choices(['csv', 'jsonl']).default('csv'))
    .option('--out <file>', 'write to a file instead of stdout')
    .option(
      '--final-only',
      'only evidence that survives in the final filesystem, or may (a layer above it failed analysis)',
    )
    .option(
      '--current-only',
      'only rows whose tag still points at the image (tag_current true), and rows reached by digest',
    )
    .action(
      run(
        () => import('./commands/report.js'),
        (m) => m.reportCommand,
      ),
    );

  withUsageHint(common(program.command('query').description('read-only SQL over the dataset')), (s) =>
    // `hubcrawl query SELECT * FROM images`: the shell split the statement into words.
    /^error: too many arguments/.test(s)
      ? 'quote the SQL statement, so that the shell passes it as one argument'
      : readsDataset('query')(s),
  )
    .argument('<sql>', 'one SQL statement that returns rows')
    .addOption(
      new Option('--format <format>', 'output').choices(['table', 'csv', 'json', 'jsonl']).default('table'),
    )
    .option('--out <file>', 'write to a file instead of stdout')
    .action(
      run(
        () => import('./commands/query.js'),
        (m) => m.queryCommand,
      ),
    );

  common(program.command('rematch').description('re-apply IOC sets to stored facts (no network)'), {
    config: true,
  })
    .option('--ioc <file>', 'add an IOC set file, repeatable', collect)
    .option('--no-builtin-iocs', 'leave the built-in sets out')
    .action(
      run(
        () => import('./commands/rematch.js'),
        (m) => m.rematchCommand,
      ),
    );

  withUsageHint(
    common(program.command('stats').description('what the dataset holds, what the last run did')),
    readsDataset('stats'),
  )
    .option('--json', 'machine-readable output')
    .action(
      run(
        () => import('./commands/stats.js'),
        (m) => m.statsCommand,
      ),
    );

  withUsageHint(
    common(
      program.command('export').description('dataset bundle for publication (CSV, SQLite, MANIFEST.json)'),
    ),
    readsDataset('export'),
  )
    // Checked by the command, not commander: commander reports a missing required option before an
    // unknown one, which would hide the --config hint above.
    .option('--out <dir>', 'a new or empty folder (required)')
    .action(
      run(
        () => import('./commands/export.js'),
        (m) => m.exportCommand,
      ),
    );

  const iocs = program.command('iocs').description('built-in and user IOC sets');
  iocs
    .command('list')
    .description('list the built-in sets (and --ioc files)')
    .option('--ioc <file>', 'also list this file, repeatable', collect)
    .option('--no-builtin-iocs', 'leave the built-in sets out, as crawl does with this flag')
    .action(
      run(
        () => import('./commands/iocs.js'),
        (m) => m.iocsListCommand,
      ),
    );
  iocs
    .command('check')
    .description('validate an IOC set file')
    .argument('<file>')
    .action(
      run(
        () => import('./commands/iocs.js'),
        (m) => m.iocsCheckCommand,
      ),
    );

  return program;
}

/** The value of --log-level (either `--log-level x` or `--log-level=x`), looked up even when parsing failed. */
function requestedLogLevel(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--log-level') return argv[i + 1];
    if (a.startsWith('--log-level=')) return a.slice('--log-level='.length);
  }
  return undefined;
}

/**
 * `--tags` (`filters.tags`) is the user's regular expression, matched against names a registry
 * chooses: one with nested quantifiers, such as `^(a+)+$`, backtracks exponentially on a long tag and
 * holds the event loop for hours, deaf to SIGINT. With this flag V8 switches such a match to its
 * linear-time engine (the same result, for every pattern that engine supports). Set before any pattern
 * is compiled.
 */
function boundRegexBacktracking(): void {
  setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks');
}

/** Runs the CLI with `argv` (without node and script) and returns the process exit code. */
export async function main(argv: string[]): Promise<number> {
  watchStandardStreams();
  // Commands come first (the program has no options of its own but --help and --version).
  if (argv[0] === 'crawl' || argv[0] === 'scan' || argv[0] === 'rematch') holdEarlySignals();
  boundRegexBacktracking();
  let code: number = EXIT.ok;
  const program = buildProgram((c) => {
    code = c;
  });
  try {
    if (argv.length === 0) {
      // A usage error, as bare `hubcrawl iocs` is: the help goes to stderr, stdout stays for results.
      program.outputHelp({ error: true });
      return EXIT.usage;
    }
    await program.parseAsync(argv, { from: 'user' });
    // Output written straight to stdout (a crawl's summary, `iocs list`) that it could not take.
    const lost = await stdoutFailure();
    if (lost) {
      process.stderr.write(`hubcrawl: ${cannotWriteStdout(lost).message}\n`);
      return code === EXIT.ok ? EXIT.aborted : code;
    }
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    const debug = ['debug', 'trace'].includes(
      requestedLogLevel(argv) ?? process.env.HUBCRAWL_LOG_LEVEL ?? '',
    );
    process.stderr.write(`hubcrawl: ${describeError(err)}\n`);
    if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    if (err instanceof ConfigError) return EXIT.usage;
    // Anything else — a typed stop (budget, disk full) or an unexpected error — aborted the command.
    return EXIT.aborted;
  } finally {
    // Released by the crawl (or rematch) as it starts; otherwise (a usage error, --help) nothing is left to stop.
    releaseEarlySignals();
  }
}
