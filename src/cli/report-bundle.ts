// `fragstat report <bundle-dir>` and `fragstat doctor <bundle-dir>`: a capture bundle's samples,
// breakdown and findings as the report's lines (src/capture/capture-bundle.ts reads and checks it).
import { readCaptureBundle } from '../capture/capture-bundle';

/** Takes the report's lines, as ReportCollector does. */
interface Lines {
  line(text: string): void;
  add(row: Record<string, unknown>): void;
}

/**
 * Feeds a bundle to `c`; returns the report's status line and what is wrong with the bundle
 * (empty when it is complete).
 * @throws Error when the directory cannot be read.
 */
export function collectBundle(dir: string, c: Lines): { status: string; problems: string[] } {
  const b = readCaptureBundle(dir);
  for (const line of (b.texts['samples.ndjson'] ?? '').split('\n')) c.line(line);
  const parsed = (name: string): unknown => {
    try {
      return b.texts[name] === undefined ? null : JSON.parse(b.texts[name]);
    } catch {
      return null;
    }
  };
  const breakdown = parsed('breakdown.json');
  if (breakdown && typeof breakdown === 'object') c.add({ breakdown });
  const findings = parsed('findings.json');
  if (Array.isArray(findings)) c.add({ findings });
  const m = b.manifest;
  const status = m
    ? `captured near ${m.reason === 'cgroup' ? "the cgroup's memory limit" : "V8's heap limit"} at ${new Date(m.triggeredAt).toISOString()}` +
      (b.complete ? '' : ` (bundle damaged: ${b.problems.join('; ')})`)
    : `an unfinished capture bundle (${b.problems.join('; ')})`;
  return { status, problems: b.problems };
}
