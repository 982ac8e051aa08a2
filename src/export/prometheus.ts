// Prometheus metrics through prom-client (a peer dependency): gauges read on scrape, off the JS
// thread, one snapshot shared by every metric of a scrape.
import { allocator } from '../read/core';
import {
  addAllocatorInfo,
  addBreakdown,
  addCgroup,
  addFigures,
  addVerdict,
  type PromClient,
  type PromRegistry,
  type Registrar,
} from './prometheus-metrics';
import { checkBoolean, checkKeys, checkNumber, checkOptions, describe } from '../base/validate';

export type { PromRegistry } from './prometheus-metrics';

export interface PrometheusOptions {
  /** Prefix of every metric name. Default 'fragstat_'. */
  prefix?: string;
  /** Read detail figures (glibc: largest free chunk, arenas, external ratio) on each scrape. Default false. */
  detail?: boolean;
  /**
   * Least time between two readings taken for scrapes, ms (stretched when a reading is slow, and
   * unused while a monitor runs: scrapes then serve its latest sample). Default 1000.
   */
  cacheMs?: number;
  /**
   * Publish the RSS breakdown as `rss_part_bytes{part}` (from a breakdown taken at most once a
   * minute, off the JS thread) and a running monitor's verdict as `verdict{kind}`, with
   * `verdict_confidence` and `verdict_rss_growth_bytes_per_second`. Default true.
   */
  breakdown?: boolean;
  /**
   * The prom-client module to build metrics with. Default: require('prom-client') as resolved from
   * fragstat, which is the application's copy when npm deduplicates the peer dependency.
   */
  client?: unknown;
}

/** What registerPrometheus() did. */
export interface PrometheusRegistration {
  /** Names of the metrics now in the registry. */
  names: string[];
  /** Removes them from the registry. */
  unregister(): void;
}

/**
 * Registers fragstat's metrics in `registry` (a prom-client Registry, e.g. `client.register`).
 * Every metric carries an `allocator` label; figures the running allocator cannot report are not
 * registered, nor the cgroup's memory limit and usage where the cgroup does not report them, and
 * a figure unknown at one scrape is left out of it. Registering again in the same
 * registry does not throw: metrics already there are kept.
 */
export function registerPrometheus(
  registry: PromRegistry,
  options?: PrometheusOptions,
): PrometheusRegistration {
  if (
    registry === null ||
    typeof registry !== 'object' ||
    typeof registry.getSingleMetric !== 'function' ||
    typeof registry.registerMetric !== 'function'
  ) {
    throw new TypeError(
      `Expected a prom-client Registry for registerPrometheus(registry) but received ${describe(registry)}`,
    );
  }
  const o = checkOptions('registerPrometheus(registry, options)', options);
  checkKeys('registerPrometheus(registry, options)', o, [
    'prefix',
    'detail',
    'cacheMs',
    'breakdown',
    'client',
  ]);
  const prefix = o.prefix === undefined ? 'fragstat_' : o.prefix;
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$|^$/.test(prefix)) {
    throw new TypeError(
      `Expected a metric-name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*) for options.prefix but received ${describe(prefix)}`,
    );
  }
  const detail = checkBoolean('options.detail', o.detail, false);
  const cacheMs = checkNumber('options.cacheMs', o.cacheMs, 1000, 0, Infinity);
  const withBreakdown = checkBoolean('options.breakdown', o.breakdown, true);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const client = (o.client ?? require('prom-client')) as PromClient;

  const r: Registrar = { registry, client, prefix, detail, cacheMs, info: allocator(), names: [], added: [] };
  addFigures(r);
  if (withBreakdown) {
    addBreakdown(r);
    addVerdict(r);
  }
  addCgroup(r);
  addAllocatorInfo(r);
  return {
    names: r.names,
    unregister() {
      for (const n of r.added) registry.removeSingleMetric(n);
    },
  };
}
