import { existsSync, readFileSync, statSync } from 'node:fs';

/** A position in an error log: what was written before it is not counted. */
export interface LogMark {
  readonly file: string;
  readonly offset: number;
}

export interface LogCounts {
  /** Entries at [error], [crit], [alert] or [emerg]. */
  readonly errorOrWorse: number;
  readonly warn: number;
  /** The counted entries' first lines, for assertion messages. */
  readonly lines: string[];
}

/**
 * lua-resty-http 0.17 logs one [warn] per worker the first time it is loaded (at the first
 * handshake that reaches lua-resty-auto-ssl, not at startup): "failed to load module
 * `resty.openssl.*`, mTLS isn't supported without lua-resty-openssl". It is harmless (nothing
 * here uses mTLS) and not ours, so it is not counted.
 */
const IGNORED = [/mTLS isn't supported without lua-resty-openssl/];

/** nginx starts each entry with "YYYY/MM/DD HH:MM:SS [level] "; continuation lines do not. */
const ENTRY = /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[(\w+)\] /;

export function markLog(file: string): LogMark {
  return { file, offset: existsSync(file) ? statSync(file).size : 0 };
}

/** The log's text written since the mark. */
export function logSince(mark: LogMark): string {
  if (!existsSync(mark.file)) return '';
  return readFileSync(mark.file).subarray(mark.offset).toString('utf8');
}

/** Counts the log entries since the mark by level (entries, not continuation lines). */
export function countLogLevels(mark: LogMark): LogCounts {
  let errorOrWorse = 0;
  let warn = 0;
  const lines: string[] = [];
  for (const line of logSince(mark).split('\n')) {
    const level = ENTRY.exec(line)?.[1];
    if (!level || IGNORED.some((re) => re.test(line))) continue;
    if (['error', 'crit', 'alert', 'emerg'].includes(level)) {
      errorOrWorse++;
      lines.push(line.slice(0, 400));
    } else if (level === 'warn') {
      warn++;
      lines.push(line.slice(0, 400));
    }
  }
  return { errorOrWorse, warn, lines };
}
