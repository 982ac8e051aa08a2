// The allocator settings in effect, and run-time changes to the few that can change. A low room:
// it reads the addon and the environment, and imports nothing from monitor, doctor or health.
import * as os from 'node:os';
import { binding } from '../binding';
import { checkBoolean, checkKeys, checkNumber, checkOptions } from '../base/validate';
import type { AllocatorName } from '../base/types';

/**
 * Where a value comes from: `env` (an environment variable the allocator read at start),
 * `mallopt` (fragstat's own tune() call), `allocator` (read back from the allocator itself) or
 * `default` (nothing set it: the allocator's documented default).
 */
export type TunableSource = 'env' | 'mallopt' | 'allocator' | 'default';

/** One setting. */
export interface Tunable {
  /** The value in effect, or null when it cannot be known (see `note`). Sizes are bytes, delays ms. */
  value: number | boolean | string | null;
  source: TunableSource;
  /** What set it: the variable (`GLIBC_TUNABLES`, `MALLOC_ARENA_MAX`), `mallopt(M_TRIM_THRESHOLD)`, the mallctl or option name, or `glibc default` (the defaults of glibc 2.36's source, unchanged since 2.26). */
  from: string;
  /** The allocator's documented default, when there is one. */
  defaultValue: number | boolean | null;
  /** Why a value is unknown or moves on its own; null when there is nothing to add. */
  note: string | null;
}

/** The allocator settings in effect in this process. */
export interface Tunables {
  allocator: AllocatorName;
  /** Every allocator-related environment variable of this process, verbatim. */
  environment: Record<string, string>;
  /** GLIBC_TUNABLES split into name -> value, or null when unset. */
  glibcTunables: Record<string, string> | null;
  /** MALLOC_CONF split into key -> value, or null when unset. */
  mallocConf: Record<string, string> | null;
  /** Settings by name: glibc tunable names under glibc (`glibc.malloc.arena_max`), mallctl names under jemalloc, property or option names under tcmalloc and mimalloc. */
  settings: Record<string, Tunable>;
}

const ENV_PATTERN = /^(MALLOC_|GLIBC_TUNABLES$|TCMALLOC_|MIMALLOC_|LD_PRELOAD$)/;

function environment(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(process.env).sort()) {
    const value = process.env[key];
    if (value !== undefined && ENV_PATTERN.test(key)) out[key] = value;
  }
  return out;
}

/** `a=1:b=2` (GLIBC_TUNABLES) or `a:1,b:2` (MALLOC_CONF) into an object. */
function splitPairs(text: string | undefined, pairSep: string, kvSep: string): Record<string, string> | null {
  if (text === undefined) return null;
  const out: Record<string, string> = {};
  for (const pair of text.split(pairSep)) {
    const at = pair.indexOf(kvSep);
    if (at > 0) out[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return out;
}

// glibc parses tunable values with strtoul: decimal or 0x hex.
function glibcNumber(text: string): number | string {
  return /^(0x[0-9a-f]+|[0-9]+)$/i.test(text) ? Number(text) : text;
}

/** glibc 2.36 (64-bit) malloc tunables, their environment aliases, defaults and mallopt names. */
interface GlibcTunable {
  alias: string | null;
  mallopt: string | null;
  defaultValue: number | null;
  /** The default moves at run time (glibc's dynamic mmap threshold). */
  dynamic: boolean;
  defaultNote: string | null;
}

const KIB = 1024;
const GLIBC: Record<string, GlibcTunable> = {
  'glibc.malloc.arena_max': {
    alias: 'MALLOC_ARENA_MAX',
    mallopt: 'M_ARENA_MAX',
    defaultValue: null,
    dynamic: false,
    defaultNote: null,
  },
  'glibc.malloc.arena_test': {
    alias: 'MALLOC_ARENA_TEST',
    mallopt: null,
    defaultValue: 8,
    dynamic: false,
    defaultNote: null,
  },
  'glibc.malloc.trim_threshold': {
    alias: 'MALLOC_TRIM_THRESHOLD_',
    mallopt: 'M_TRIM_THRESHOLD',
    defaultValue: 128 * KIB,
    dynamic: true,
    defaultNote:
      'glibc starts at 128 KiB and, while no threshold was set, raises it to twice the mmap threshold each time ' +
      'a freed mmapped chunk was larger than that threshold (up to 64 MiB); the value now cannot be read',
  },
  'glibc.malloc.top_pad': {
    alias: 'MALLOC_TOP_PAD_',
    mallopt: 'M_TOP_PAD',
    defaultValue: 128 * KIB,
    dynamic: false,
    defaultNote: null,
  },
  'glibc.malloc.mmap_threshold': {
    alias: 'MALLOC_MMAP_THRESHOLD_',
    mallopt: 'M_MMAP_THRESHOLD',
    defaultValue: 128 * KIB,
    dynamic: true,
    defaultNote:
      'glibc starts at 128 KiB and, while no threshold was set, raises it to the size of each freed mmapped ' +
      'chunk larger than it (up to 32 MiB); the value now cannot be read',
  },
  'glibc.malloc.mmap_max': {
    alias: 'MALLOC_MMAP_MAX_',
    mallopt: null,
    defaultValue: 65536,
    dynamic: false,
    defaultNote: null,
  },
  'glibc.malloc.tcache_count': {
    alias: null,
    mallopt: null,
    defaultValue: 7,
    dynamic: false,
    defaultNote: null,
  },
  'glibc.malloc.tcache_max': {
    alias: null,
    mallopt: null,
    defaultValue: 1032,
    dynamic: false,
    defaultNote: null,
  },
};
// Setting any of these (environment, GLIBC_TUNABLES or mallopt) turns glibc's dynamic thresholds off.
const FREEZES_THRESHOLDS = [
  'glibc.malloc.trim_threshold',
  'glibc.malloc.top_pad',
  'glibc.malloc.mmap_threshold',
  'glibc.malloc.mmap_max',
];

/**
 * CPUs as glibc counts them for the arena cap (/sys/devices/system/cpu/online), read once: glibc
 * itself fixes its cap once, and os.cpus() parses /proc/cpuinfo (about 100 us).
 */
let cpuCount: number | null = null;
function onlineCpus(): number {
  return (cpuCount ??= Math.max(1, os.cpus().length));
}

function glibcSettings(
  env: Record<string, string>,
  tunables: Record<string, string> | null,
): Record<string, Tunable> {
  const calls = binding.malloptCalls();
  const out: Record<string, Tunable> = {};
  const fromEnv = (name: string): Tunable | null => {
    const t = GLIBC[name];
    // GLIBC_TUNABLES wins over the aliases whatever their order (elf/dl-tunables.c).
    if (tunables && tunables[name] !== undefined) {
      return {
        value: glibcNumber(tunables[name]),
        source: 'env',
        from: 'GLIBC_TUNABLES',
        defaultValue: null,
        note: null,
      };
    }
    if (t?.alias && env[t.alias] !== undefined) {
      return {
        value: glibcNumber(env[t.alias]),
        source: 'env',
        from: t.alias,
        defaultValue: null,
        note: null,
      };
    }
    return null;
  };
  const names = new Set(Object.keys(GLIBC));
  for (const key of Object.keys(tunables ?? {})) if (key.startsWith('glibc.malloc.')) names.add(key);
  const frozenAtStart = FREEZES_THRESHOLDS.some((n) => fromEnv(n) !== null);
  const frozenLater = FREEZES_THRESHOLDS.some(
    (n) => GLIBC[n].mallopt !== null && calls[GLIBC[n].mallopt!] !== undefined,
  );
  for (const name of names) {
    const t = GLIBC[name];
    const defaultValue = name === 'glibc.malloc.arena_max' ? 8 * onlineCpus() : (t?.defaultValue ?? null);
    const call = t?.mallopt ? calls[t.mallopt] : undefined;
    let entry: Tunable | null = null;
    if (call !== undefined) {
      entry = { value: call, source: 'mallopt', from: `mallopt(${t!.mallopt})`, defaultValue, note: null };
    } else {
      const env = fromEnv(name);
      if (env) entry = { ...env, defaultValue };
    }
    if (entry === null) {
      let value: number | null = defaultValue;
      let note: string | null = null;
      if (name === 'glibc.malloc.arena_max') {
        note = `unset: glibc caps arenas at 8 x online CPUs (${onlineCpus()})`;
      } else if (t?.dynamic && !frozenAtStart) {
        value = null;
        note = frozenLater
          ? "a mallopt call turned glibc's dynamic thresholds off; this one stays where it had moved to, which cannot be read"
          : t.defaultNote;
      }
      entry = { value, source: 'default', from: 'glibc default', defaultValue, note };
    }
    if (name === 'glibc.malloc.arena_max' && entry.source === 'mallopt') {
      entry.note =
        'arenas created before this call stay: the cap only stops new ones, and only if the process had at most 8 arenas when it was set (glibc fixes its cap once it passes 8)';
    }
    out[name] = entry;
  }
  return out;
}

function allocatorSettings(
  name: AllocatorName,
  conf: Record<string, string> | null,
): Record<string, Tunable> {
  const out: Record<string, Tunable> = {};
  const read = binding.allocatorSettings();
  for (const key of Object.keys(read)) {
    const optKey = key.startsWith('opt.') ? key.slice(4) : null;
    const fromConf = name === 'jemalloc' && optKey !== null && conf !== null && conf[optKey] !== undefined;
    out[key] = {
      value: read[key],
      source: 'allocator',
      from: key,
      defaultValue: null,
      note: fromConf ? `MALLOC_CONF sets ${optKey}:${conf![optKey!]}` : null,
    };
  }
  return out;
}

/**
 * The allocator settings in effect: the environment the allocator read at start (MALLOC_*,
 * GLIBC_TUNABLES, MALLOC_CONF, TCMALLOC_*, MIMALLOC_*), fragstat's own mallopt calls, and what
 * jemalloc (opt.*, background_thread, decay), tcmalloc (release rate) and mimalloc 2.0.9
 * (options) report themselves. glibc has no public getter: its values come from the environment,
 * from tune(), or are its documented defaults, and each says which.
 */
export function tunables(): Tunables {
  const name = binding.allocator().name;
  const env = environment();
  const glibcTunables = splitPairs(process.env.GLIBC_TUNABLES, ':', '=');
  const mallocConf = splitPairs(process.env.MALLOC_CONF, ',', ':');
  const settings = name === 'glibc' ? glibcSettings(env, glibcTunables) : allocatorSettings(name, mallocConf);
  return { allocator: name, environment: env, glibcTunables, mallocConf, settings };
}

/** Options of tune(). Each applies under one allocator; any other allocator refuses it. */
export interface TuneOptions {
  /** glibc mallopt(M_ARENA_MAX): caps arenas created from now on; existing ones stay. */
  arenaMax?: number;
  /** glibc mallopt(M_TRIM_THRESHOLD): free() shrinks an arena's top once it exceeds this. */
  trimThresholdBytes?: number;
  /** glibc mallopt(M_MMAP_THRESHOLD): requests at least this large get their own mapping (max 32 MiB). */
  mmapThresholdBytes?: number;
  /** glibc mallopt(M_TOP_PAD): slack kept when the heap grows or shrinks. */
  topPadBytes?: number;
  /** jemalloc background_thread: purging by background threads. */
  backgroundThread?: boolean;
  /** jemalloc dirty_decay_ms for new arenas (arenas.*) and every existing one (arena.<i>.*); -1 = never. */
  dirtyDecayMs?: number;
  /** jemalloc muzzy_decay_ms, likewise. */
  muzzyDecayMs?: number;
  /** tcmalloc release rate (0 = never return memory gradually; gperftools' default 1, 10 = eager). */
  releaseRate?: number;
  /** mimalloc 2.0.9 mi_option_decommit_delay. */
  decommitDelayMs?: number;
  /** mimalloc 2.0.9 mi_option_allow_decommit. */
  allowDecommit?: boolean;
}

/** One setting tune() changed, read back before and after. */
export interface TuneChange {
  option: keyof TuneOptions;
  setting: string;
  before: Tunable | null;
  after: Tunable | null;
}

export interface TuneResult {
  allocator: AllocatorName;
  changes: TuneChange[];
}

interface Action {
  allocator: AllocatorName;
  /** Settings written, in order, and the one read back (the first). */
  settings: string[];
  apply(value: number | boolean): void;
}

const INT_MAX = 2 ** 31 - 1;
const mallopt =
  (param: string): Action['apply'] =>
  (value) =>
    binding.mallopt(param, value as number);
const write =
  (...names: string[]): Action['apply'] =>
  (value) => {
    for (const n of names) binding.writeSetting(n, value);
  };

const ACTIONS: Record<keyof TuneOptions, Action> = {
  arenaMax: { allocator: 'glibc', settings: ['glibc.malloc.arena_max'], apply: mallopt('M_ARENA_MAX') },
  trimThresholdBytes: {
    allocator: 'glibc',
    settings: ['glibc.malloc.trim_threshold'],
    apply: mallopt('M_TRIM_THRESHOLD'),
  },
  mmapThresholdBytes: {
    allocator: 'glibc',
    settings: ['glibc.malloc.mmap_threshold'],
    apply: mallopt('M_MMAP_THRESHOLD'),
  },
  topPadBytes: { allocator: 'glibc', settings: ['glibc.malloc.top_pad'], apply: mallopt('M_TOP_PAD') },
  backgroundThread: {
    allocator: 'jemalloc',
    settings: ['background_thread'],
    apply: write('background_thread'),
  },
  dirtyDecayMs: {
    allocator: 'jemalloc',
    settings: ['arenas.dirty_decay_ms', 'arena.0.dirty_decay_ms'],
    apply: write('arenas.dirty_decay_ms', 'arena.all.dirty_decay_ms'),
  },
  muzzyDecayMs: {
    allocator: 'jemalloc',
    settings: ['arenas.muzzy_decay_ms', 'arena.0.muzzy_decay_ms'],
    apply: write('arenas.muzzy_decay_ms', 'arena.all.muzzy_decay_ms'),
  },
  releaseRate: {
    allocator: 'tcmalloc',
    settings: ['tcmalloc.release_rate'],
    apply: write('tcmalloc.release_rate'),
  },
  decommitDelayMs: {
    allocator: 'mimalloc',
    settings: ['mi_option_decommit_delay'],
    apply: write('mi_option_decommit_delay'),
  },
  allowDecommit: {
    allocator: 'mimalloc',
    settings: ['mi_option_allow_decommit'],
    apply: write('mi_option_allow_decommit'),
  },
};

function validate(o: Record<string, unknown>): Partial<Record<keyof TuneOptions, number | boolean>> {
  const v: Partial<Record<keyof TuneOptions, number | boolean | undefined>> = {
    arenaMax: checkNumber('options.arenaMax', o.arenaMax, NaN, 1, INT_MAX, true),
    trimThresholdBytes: checkNumber(
      'options.trimThresholdBytes',
      o.trimThresholdBytes,
      NaN,
      0,
      INT_MAX,
      true,
    ),
    mmapThresholdBytes: checkNumber(
      'options.mmapThresholdBytes',
      o.mmapThresholdBytes,
      NaN,
      0,
      32 * 1024 * 1024,
      true,
    ),
    topPadBytes: checkNumber('options.topPadBytes', o.topPadBytes, NaN, 0, INT_MAX, true),
    backgroundThread:
      o.backgroundThread === undefined
        ? undefined
        : checkBoolean('options.backgroundThread', o.backgroundThread, false),
    dirtyDecayMs: checkNumber('options.dirtyDecayMs', o.dirtyDecayMs, NaN, -1, INT_MAX, true),
    muzzyDecayMs: checkNumber('options.muzzyDecayMs', o.muzzyDecayMs, NaN, -1, INT_MAX, true),
    releaseRate: checkNumber('options.releaseRate', o.releaseRate, NaN, 0, 1000),
    decommitDelayMs: checkNumber('options.decommitDelayMs', o.decommitDelayMs, NaN, 0, INT_MAX, true),
    allowDecommit:
      o.allowDecommit === undefined
        ? undefined
        : checkBoolean('options.allowDecommit', o.allowDecommit, false),
  };
  const out: Partial<Record<keyof TuneOptions, number | boolean>> = {};
  for (const key of Object.keys(v) as (keyof TuneOptions)[]) {
    const value = v[key];
    if (value !== undefined && !(typeof value === 'number' && Number.isNaN(value))) out[key] = value;
  }
  return out;
}

/**
 * Changes allocator settings at run time and reports each before and after (read back through
 * tunables()). Every option is checked before any is applied: a bad value throws a
 * TypeError/RangeError, an option the running allocator does not have throws an Error with code
 * ERR_FRAGSTAT_TUNE_UNSUPPORTED, and the allocator refusing a value throws code
 * ERR_FRAGSTAT_TUNE_FAILED (options applied before it stay applied). Settings are process-wide.
 */
export function tune(options: TuneOptions): TuneResult {
  const o = checkOptions('tune(options)', options);
  checkKeys('tune(options)', o, Object.keys(ACTIONS));
  const values = validate(o);
  const name = binding.allocator().name;
  const keys = Object.keys(values) as (keyof TuneOptions)[];
  for (const key of keys) {
    if (ACTIONS[key].allocator !== name) {
      throw Object.assign(
        new Error(
          `tune(): options.${key} applies under ${ACTIONS[key].allocator}, but ${name} serves malloc here`,
        ),
        { code: 'ERR_FRAGSTAT_TUNE_UNSUPPORTED' },
      );
    }
  }
  const before = tunables().settings;
  for (const key of keys) ACTIONS[key].apply(values[key]!);
  const after = tunables().settings;
  const changes: TuneChange[] = [];
  for (const key of keys) {
    for (const setting of ACTIONS[key].settings) {
      changes.push({ option: key, setting, before: before[setting] ?? null, after: after[setting] ?? null });
    }
  }
  return { allocator: name, changes };
}
