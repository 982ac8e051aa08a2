/**
 * fragstat: see and release native heap fragmentation in Node.js on Linux.
 * @packageDocumentation
 */
export { allocator, snapshot, snapshotAsync, trim, trimSync, trimLog, type TrimLog } from './core';
export type * from './types';
export {
  monitor,
  Monitor,
  type MonitorOptions,
  type AutoTrimOptions,
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
export { toLogFields, type LogFields } from './logs';
export {
  registerPrometheus,
  type PrometheusOptions,
  type PrometheusRegistration,
  type PromRegistry,
} from './prometheus';
export { registerOpenTelemetry, type OpenTelemetryOptions, type OtelMeter } from './opentelemetry';
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
