// jemalloc's heap_v2 profile text, as prof.dump writes it (jemalloc 5.x, src/prof_data.c):
//
//   heap_v2/<sample period in bytes>
//     t*: <live objects>: <live bytes> [<allocated objects>: <allocated bytes>]
//     t<thread>: ...                       (one line per thread)
//   @ 0x<pc> 0x<pc> ...                    (one backtrace, innermost frame first)
//     t*: <live objects>: <live bytes> [...]
//     t<thread>: ...
//   ...
//   MAPPED_LIBRARIES:
//   <a copy of /proc/self/maps at dump time>
//
// The counts are sampled: jemalloc samples allocations by bytes with a Poisson process of mean
// <period> bytes, so an allocation of size s is recorded with probability 1 - exp(-s/period).
// jeprof (AdjustSamples, sampling algorithm 2) turns a stack's counts back into an estimate of
// what it holds by dividing both by that probability, taken at the stack's mean object size.
// jemalloc 5.3 (opt.prof_unbias) writes counts chosen so that this very formula yields its own
// object-by-object estimate. No N-API here: plain parsing.

export interface HeapStack {
  /** Return addresses, innermost first, as jemalloc recorded them. */
  addresses: number[];
  /** Sampled live objects and bytes, as dumped. */
  sampledObjects: number;
  sampledBytes: number;
}

export interface HeapDump {
  samplePeriodBytes: number;
  stacks: HeapStack[];
  /** The /proc/self/maps copy that follows MAPPED_LIBRARIES:, or '' when absent. */
  maps: string;
}

export class HeapDumpFormatError extends Error {
  code = 'ERR_FRAGSTAT_PROFILE_FORMAT';
}

const header = /^heap_v2\/(\d+)\s*$/;
const counts = /^\s*t\*:\s*(\d+):\s*(\d+)\s*\[\s*(\d+):\s*(\d+)\s*\]\s*$/;

/** Parses a heap_v2 dump. Throws HeapDumpFormatError on anything it does not recognise. */
export function parseHeapV2(text: string): HeapDump {
  const lines = text.split('\n');
  const head = header.exec(lines[0] ?? '');
  if (!head) {
    throw new HeapDumpFormatError(
      `not a jemalloc heap_v2 profile (first line: ${JSON.stringify((lines[0] ?? '').slice(0, 40))})`,
    );
  }
  const dump: HeapDump = {
    samplePeriodBytes: Number(head[1]),
    stacks: [],
    maps: '',
  };
  let current: HeapStack | null = null;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('@')) {
      const addresses = line
        .slice(1)
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map((a) => {
          // User-space addresses on x86-64 and arm64 stay below 2^48: exact in a double.
          const n = Number.parseInt(a, 16);
          if (!/^0x[0-9a-f]+$/i.test(a) || !Number.isSafeInteger(n)) {
            throw new HeapDumpFormatError(`line ${i + 1}: bad address ${JSON.stringify(a)}`);
          }
          return n;
        });
      current = { addresses, sampledObjects: 0, sampledBytes: 0 };
      dump.stacks.push(current);
      continue;
    }
    if (line.startsWith('MAPPED_LIBRARIES:')) {
      dump.maps = lines.slice(i + 1).join('\n');
      break;
    }
    const m = counts.exec(line);
    if (m && current) {
      current.sampledObjects = Number(m[1]);
      current.sampledBytes = Number(m[2]);
    }
    // The header's own t* line is not used: in jemalloc 5.3 it does not add up the stacks below
    // it. Per-thread lines (t0:, t1: ...) and blank lines carry nothing the profile needs.
  }
  return dump;
}

/**
 * jeprof's unsampling: the factor by which a stack's sampled counts are multiplied to estimate
 * what it holds, 1 / (1 - exp(-(bytes/objects) / period)).
 */
export function unsampleFactor(sampledObjects: number, sampledBytes: number, periodBytes: number): number {
  if (sampledObjects <= 0 || sampledBytes <= 0) return 0;
  if (periodBytes <= 1) return 1; // lg_prof_sample:0 records every allocation
  const mean = sampledBytes / sampledObjects;
  return 1 / (1 - Math.exp(-mean / periodBytes));
}

/** One row of a heap profile's top table (kept here, beside the parser, so that the public
 * typings never load pprof-format's). */
export interface TopEntry {
  /** Function name (C++ names demangled). */
  name: string;
  /** Estimated live bytes allocated directly by this function (innermost frame). */
  selfBytes: number;
  /** Estimated live bytes allocated by this function or anything it called. */
  cumulativeBytes: number;
  selfObjects: number;
}
