/**
 * The connection pool every crawl request goes through: undici's Agent, with a guard against an undici 7
 * crash (nodejs/undici#5360, fixed in undici 8, which needs Node 22).
 *
 * When a response body is not read as fast as it arrives (a layer's bytes waiting for the analyzer), the
 * HTTP/1 parser pauses; if the server then closes the connection (a body delimited by the close, or
 * `Connection: close` after the last byte), undici's socket 'end' handler finishes the paused parser and
 * fails `assert(!this.paused)` in an event handler: an uncaught exception that ends the whole crawl. The
 * fix upstream resumes the parser before finishing it; here the same is done from a listener that runs
 * before undici's own. Resuming only lets the parser deliver what it already holds: the body stream buffers
 * it past its high-water mark, bounded by what the server sent before closing.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { Agent, buildConnector } from 'undici';

/** The symbol under which undici keeps a socket's HTTP/1 parser; undefined if a later undici moved it. */
const kParser: symbol | undefined = (() => {
  try {
    const symbols = createRequire(import.meta.url)('undici/lib/core/symbols.js') as { kParser?: unknown };
    return typeof symbols.kParser === 'symbol' ? symbols.kParser : undefined;
  } catch {
    return undefined;
  }
})();

interface PausableParser {
  paused?: boolean;
  ptr?: unknown;
  resume?: () => void;
  llhttp?: { llhttp_resume?: (ptr: unknown) => void };
}

/**
 * Before undici's 'end' handler: a parser paused under backpressure is resumed, so that finishing it
 * cannot fail. Resuming parses what the socket still holds, which completes a body of known length; a body
 * delimited by the close pauses again at once (the bytes it was given are delivered, and the body stream
 * buffers them: backpressure is advisory here), so llhttp itself is resumed too, and undici's finish then
 * reads the close as the body's end.
 */
function resumeParserAtEnd(socket: Socket): void {
  if (kParser === undefined) return;
  const key = kParser;
  socket.prependListener('end', () => {
    const parser = (socket as unknown as Record<symbol, PausableParser | undefined>)[key];
    if (parser?.paused !== true || parser.ptr == null || typeof parser.resume !== 'function') return;
    parser.resume();
    const llhttpResume = parser.llhttp?.llhttp_resume;
    if (parser.paused && typeof llhttpResume === 'function') {
      llhttpResume(parser.ptr);
      parser.paused = false;
    }
  });
}

/** A new pool for one run (or one HttpClient): keep-alive 10 s, up to 64 connections per origin. */
export function newCrawlAgent(): Agent {
  const connect = buildConnector({});
  return new Agent({
    keepAliveTimeout: 10_000,
    connections: 64,
    connect: (options, callback) =>
      connect(options, (err, socket) => {
        if (socket) resumeParserAtEnd(socket);
        if (err) callback(err, null);
        else callback(null, socket as Socket);
      }),
  });
}
