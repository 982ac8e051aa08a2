// A heap profile as profile.proto (the format of pprof, Pyroscope, Datadog, speedscope...), built
// and read with the pprof-format encoder, and the "top" table computed from either form. No N-API.
import { gunzipSync, gzipSync } from 'node:zlib';
import {
  Function as PprofFunction,
  Line,
  Location,
  Mapping as PprofMapping,
  Profile,
  Sample,
  StringTable,
  ValueType,
} from 'pprof-format';
import type { TopEntry } from './profile-heap';
import type { Frame, Mapping } from './profile-symbols';

/** One stack with its estimated live objects and bytes (negative in a diff for what was freed). */
export interface StackValue {
  /** Frame addresses, innermost first, already pointing inside the calling instruction. */
  addresses: number[];
  objects: number;
  bytes: number;
}

/** One row of the top table. */

export interface BuildOptions {
  samplePeriodBytes: number;
  timeMs: number;
  comment?: string;
}

/** Encodes stacks as a gzipped profile.proto with inuse_objects/count and inuse_space/bytes. */
export function buildPprof(stacks: StackValue[], frames: Map<number, Frame>, o: BuildOptions): Buffer {
  const strings = new StringTable();
  const mappings = new Map<Mapping, PprofMapping>();
  const functions = new Map<string, PprofFunction>();
  const locations = new Map<number, Location>();
  const mappingOf = (m: Mapping): PprofMapping => {
    let pm = mappings.get(m);
    if (!pm) {
      pm = new PprofMapping({
        id: mappings.size + 1,
        memoryStart: m.start,
        memoryLimit: m.end,
        fileOffset: m.offset,
        filename: strings.dedup(m.path),
        hasFunctions: true,
      });
      mappings.set(m, pm);
    }
    return pm;
  };
  const functionOf = (f: Frame): PprofFunction => {
    const key = `${f.name}\0${f.mapping?.path ?? ''}`;
    let fn = functions.get(key);
    if (!fn) {
      fn = new PprofFunction({
        id: functions.size + 1,
        name: strings.dedup(f.name),
        systemName: strings.dedup(f.systemName || f.name),
        filename: strings.dedup(f.mapping?.path ?? ''),
      });
      functions.set(key, fn);
    }
    return fn;
  };
  const locationOf = (address: number): Location => {
    let loc = locations.get(address);
    if (!loc) {
      const f = frames.get(address) ?? { name: '[unknown]', systemName: '', mapping: null };
      loc = new Location({
        id: locations.size + 1,
        mappingId: f.mapping ? mappingOf(f.mapping).id : 0,
        address,
        line: [new Line({ functionId: functionOf(f).id })],
      });
      locations.set(address, loc);
    }
    return loc;
  };
  const samples = stacks
    .filter((s) => Math.round(s.bytes) !== 0 || Math.round(s.objects) !== 0)
    .map(
      (s) =>
        new Sample({
          locationId: s.addresses.map((a) => locationOf(a).id),
          value: [Math.round(s.objects), Math.round(s.bytes)],
        }),
    );
  const profile = new Profile({
    sampleType: [
      new ValueType({ type: strings.dedup('inuse_objects'), unit: strings.dedup('count') }),
      new ValueType({ type: strings.dedup('inuse_space'), unit: strings.dedup('bytes') }),
    ],
    sample: samples,
    mapping: [...mappings.values()],
    location: [...locations.values()],
    function: [...functions.values()],
    periodType: new ValueType({ type: strings.dedup('space'), unit: strings.dedup('bytes') }),
    period: o.samplePeriodBytes,
    timeNanos: BigInt(Math.round(o.timeMs)) * 1_000_000n,
    defaultSampleType: strings.dedup('inuse_space'),
    comment: o.comment ? [strings.dedup(o.comment)] : [],
    stringTable: strings,
  });
  return gzipSync(profile.encode());
}

/** Decodes a profile.proto, gzipped or not. */
export function decodePprof(data: Uint8Array): Profile {
  const raw = data[0] === 0x1f && data[1] === 0x8b ? gunzipSync(data) : data;
  return Profile.decode(raw);
}

/** A decoded profile's stacks as addresses and names, with the values of the named sample types. */
export function readPprof(p: Profile): {
  stacks: (StackValue & { names: string[] })[];
  samplePeriodBytes: number;
} {
  const str = (i: unknown) => p.stringTable.strings[Number(i)] ?? '';
  const types = p.sampleType.map((t) => str(t.type));
  const objectsAt = types.indexOf('inuse_objects');
  const bytesAt = types.indexOf('inuse_space');
  if (bytesAt < 0) throw new Error('the profile has no inuse_space sample type: not a heap profile');
  const fnName = new Map(p.function.map((f) => [Number(f.id), str(f.name)]));
  const locs = new Map(
    p.location.map((l) => [
      Number(l.id),
      {
        address: Number(l.address),
        name: l.line.length ? (fnName.get(Number(l.line[0].functionId)) ?? '') : '',
      },
    ]),
  );
  const stacks = p.sample.map((s) => {
    const frames = s.locationId.map((id) => locs.get(Number(id)) ?? { address: 0, name: '[unknown]' });
    return {
      addresses: frames.map((f) => f.address),
      names: frames.map((f) => f.name || `0x${f.address.toString(16)}`),
      objects: objectsAt < 0 ? 0 : Number(s.value[objectsAt]),
      bytes: Number(s.value[bytesAt]),
    };
  });
  return { stacks, samplePeriodBytes: Number(p.period) };
}

/** Functions by self bytes (then cumulative), or by cumulative bytes; at most `limit` rows. */
export function topTable(
  stacks: { names: string[]; objects: number; bytes: number }[],
  limit: number,
  by: 'self' | 'cumulative' = 'self',
): TopEntry[] {
  const rows = new Map<string, TopEntry>();
  const row = (name: string): TopEntry => {
    let r = rows.get(name);
    if (!r) {
      r = { name, selfBytes: 0, cumulativeBytes: 0, selfObjects: 0 };
      rows.set(name, r);
    }
    return r;
  };
  for (const s of stacks) {
    if (s.names.length === 0) continue;
    const leaf = row(s.names[0]);
    leaf.selfBytes += s.bytes;
    leaf.selfObjects += s.objects;
    for (const name of new Set(s.names)) row(name).cumulativeBytes += s.bytes;
  }
  return [...rows.values()]
    .filter((r) => Math.round(r.selfBytes) !== 0 || Math.round(r.cumulativeBytes) !== 0)
    .sort((a, b) =>
      by === 'self'
        ? Math.abs(b.selfBytes) - Math.abs(a.selfBytes) ||
          Math.abs(b.cumulativeBytes) - Math.abs(a.cumulativeBytes)
        : Math.abs(b.cumulativeBytes) - Math.abs(a.cumulativeBytes),
    )
    .slice(0, limit)
    .map((r) => ({
      ...r,
      selfBytes: Math.round(r.selfBytes),
      cumulativeBytes: Math.round(r.cumulativeBytes),
      selfObjects: Math.round(r.selfObjects),
    }));
}

const MiB = 1024 * 1024;

/** The top table as text, one function a line: self MiB, self %, cumulative MiB, name. */
export function formatTop(top: TopEntry[], totalBytes: number): string {
  const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`.padStart(12);
  const pct = (b: number) => (totalBytes ? `${((b / totalBytes) * 100).toFixed(1)}%` : '-').padStart(7);
  const lines = [`${'self'.padStart(12)} ${'self%'.padStart(7)} ${'cumulative'.padStart(12)}  function`];
  for (const r of top)
    lines.push(`${mib(r.selfBytes)} ${pct(r.selfBytes)} ${mib(r.cumulativeBytes)}  ${r.name}`);
  return lines.join('\n');
}
