// fragstat's gauges through the OpenTelemetry metrics API, printed by the SDK's console exporter.
const { metrics } = require('@opentelemetry/api');
const {
  MeterProvider,
  PeriodicExportingMetricReader,
  ConsoleMetricExporter,
} = require('@opentelemetry/sdk-metrics');
const fragstat = require('fragstat');

const provider = new MeterProvider({
  readers: [
    new PeriodicExportingMetricReader({
      exporter: new ConsoleMetricExporter(),
      exportIntervalMillis: 60_000,
    }),
  ],
});
metrics.setGlobalMeterProvider(provider);
fragstat.registerOpenTelemetry(metrics.getMeter('my-service'));

// Export once now (normally the reader does it every minute), then shut down.
provider.forceFlush().then(() => provider.shutdown());
