/**
 * fragstat: see and release native heap fragmentation in Node.js on Linux.
 * @packageDocumentation
 */
export { allocator, snapshot, snapshotAsync, trim, trimSync, trimLog, type TrimLog } from './read/core';
export type * from './base/types';
export {
  breakdown,
  breakdownAsync,
  composeBreakdown,
  type Breakdown,
  type BreakdownParts,
  type BreakdownPart,
} from './read/breakdown';
export {
  readAnonymousRss as anonymousRssBytes,
  type Smaps,
  type Mapping as SmapsMapping,
} from './read/smaps';
export {
  verdict,
  verdictDefaults,
  verdictKinds,
  type Verdict,
  type VerdictKind,
  type VerdictEvidence,
  type VerdictOptions,
  type VerdictPoint,
  type VerdictConfidence,
} from './diagnose/verdict';
export type { AutoTrimOptions, TrimReason } from './cure/policy';
export {
  monitor,
  Monitor,
  type MonitorOptions,
  type Sample,
  type Budget,
  type MonitorStats,
  type IntervalReason,
} from './monitor/monitor';
export type { MonitorElsewhere } from './monitor/process-claim';
export {
  doctor,
  doctorThresholds,
  jemallocCommand,
  type Finding,
  type Severity,
  type DoctorOptions,
  type DoctorStats,
} from './diagnose/doctor';
export {
  health,
  healthHandler,
  type HealthReport,
  type HealthOptions,
  type HealthHandlerOptions,
} from './export/health';
export type { ReadingSource } from './monitor/reading';
export { toLogFields, type LogFields, type LogExtras } from './export/logs';
export {
  registerPrometheus,
  type PrometheusOptions,
  type PrometheusRegistration,
  type PromRegistry,
} from './export/prometheus';
export { registerOpenTelemetry, type OpenTelemetryOptions, type OtelMeter } from './export/opentelemetry';
export {
  tunables,
  tune,
  type Tunables,
  type Tunable,
  type TunableSource,
  type TuneOptions,
  type TuneChange,
  type TuneResult,
} from './cure/tunables';
export {
  cgroupMemory,
  type CgroupMemory,
  type CgroupMemoryOptions,
  type PressureFigures,
} from './read/cgroup';
export { captureMaxBytes, type CaptureInfo, type CaptureManifest, type CaptureFile } from './capture/capture';
export type { CaptureOptions, CaptureReason } from './capture/capture-episode';
export { trimOnSignal, type TrimOnSignalOptions } from './cure/signal';
export {
  releaseV8Heap,
  canReleaseV8Heap,
  v8ReleaseLog,
  type V8ReleaseLog,
  type ReleaseV8HeapOptions,
  type V8ReleaseResult,
  type V8ReleaseMethodName,
} from './cure/v8heap';
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
} from './profile/profile';
export {
  holdersFromSnapshot,
  diffHolders,
  type Holders,
  type HoldersOptions,
  type HolderGroup,
  type HolderPart,
  type HoldersDiff,
  type HolderChange,
} from './profile/holders';
export { holders, type LiveHolders, type LiveHoldersOptions } from './profile/holders-live';
export {
  parseHeapSnapshot,
  HeapSnapshotParser,
  type HeapSnapshot,
  type HeapSnapshotMeta,
} from './profile/heapsnapshot';
export {
  attach,
  openInspector,
  AttachError,
  type AttachOptions,
  type AttachResult,
  type AttachReading,
  type AttachTrim,
  type AttachWatch,
  type AttachHolders,
  type OpenInspector,
} from './attach/attach';
export {
  takeHeapSnapshot,
  type InspectorSession,
  type Listener as InspectorListener,
} from './attach/inspector-client';
