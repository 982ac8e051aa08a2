/**
 * fragstat: see and release native heap fragmentation in Node.js on Linux.
 * @packageDocumentation
 */
export { allocator, snapshot, snapshotAsync, trim, trimSync, trimLog, type TrimLog } from './core';
export type * from './types';
export {
  breakdown,
  breakdownAsync,
  composeBreakdown,
  type Breakdown,
  type BreakdownParts,
  type BreakdownPart,
} from './breakdown';
export { readAnonymousRss as anonymousRssBytes } from './smaps';
export {
  verdict,
  verdictDefaults,
  verdictKinds,
  type Verdict,
  type VerdictKind,
  type VerdictEvidence,
  type VerdictOptions,
  type VerdictPoint,
} from './verdict';
export type { AutoTrimOptions } from './policy';
export {
  monitor,
  Monitor,
  type MonitorOptions,
  type Sample,
  type Budget,
  type MonitorStats,
} from './monitor';
export {
  doctor,
  doctorThresholds,
  jemallocCommand,
  type Finding,
  type Severity,
  type DoctorOptions,
} from './doctor';
export {
  health,
  healthHandler,
  type HealthReport,
  type HealthOptions,
  type HealthHandlerOptions,
} from './health';
export { toLogFields, type LogFields, type LogExtras } from './logs';
export {
  registerPrometheus,
  type PrometheusOptions,
  type PrometheusRegistration,
  type PromRegistry,
} from './prometheus';
export { registerOpenTelemetry, type OpenTelemetryOptions, type OtelMeter } from './opentelemetry';
export {
  tunables,
  tune,
  type Tunables,
  type Tunable,
  type TunableSource,
  type TuneOptions,
  type TuneChange,
  type TuneResult,
} from './tunables';
export { cgroupMemory, type CgroupMemory, type CgroupMemoryOptions, type PressureFigures } from './cgroup';
export { trimOnSignal, type TrimOnSignalOptions } from './signal';
export {
  heapProfile,
  heapProfilerStatus,
  setHeapProfilerActive,
  setHeapProfilerJsFrames,
  profilingCommand,
  type HeapProfile,
  type HeapProfileOptions,
  type HeapProfilerStatus,
  type TopEntry,
} from './profile';
export {
  attach,
  openInspector,
  AttachError,
  type AttachOptions,
  type AttachResult,
  type AttachReading,
  type AttachTrim,
  type AttachWatch,
  type OpenInspector,
} from './attach';
export { takeHeapSnapshot, type InspectorSession } from './inspector-client';
