// A real Prometheus server on loopback for the tests: started on a free port with a given
// configuration, queried through its HTTP API, killed with its data directory removed.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A free TCP port on 127.0.0.1 (free when asked; the caller binds it next). */
export async function freePort(): Promise<number> {
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
}

/** One series of an instant query's result. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** A running Prometheus server started by startPrometheus(). */
export interface PrometheusServer {
  port: number;
  /** An instant query: the result vector, or null while the server does not answer. */
  query(expr: string): Promise<PromSample[] | null>;
  /** GET a path of the HTTP API (e.g. /api/v1/rules) and parse its JSON; null while it does not answer. */
  api<T>(pathAndQuery: string): Promise<T | null>;
  stop(): void;
}

/**
 * Starts `binary` (the prometheus command) with `config` (prometheus.yml's text) on a free port,
 * storing its data in a temporary directory. The server may take seconds to answer: callers
 * poll with a deadline.
 */
export async function startPrometheus(binary: string, config: string): Promise<PrometheusServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fragstat-prom-'));
  writeFileSync(path.join(dir, 'prometheus.yml'), config);
  const data = path.join(dir, 'data');
  // The port was free when asked, but another test's server may take it before this one binds
  // it: this server is known to be up only once the server on the port reports this storage
  // directory. A server that exits (could not bind) is started again on another port.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const child = spawn(
      binary,
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${data}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: 'ignore' },
    );
    let exited = false;
    child.once('exit', () => (exited = true));
    const api = async <T>(p: string): Promise<T | null> => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}${p}`);
        return (await res.json()) as T;
      } catch {
        return null; // not up yet
      }
    };
    const deadline = Date.now() + 30_000;
    let ours = false;
    while (!exited && Date.now() < deadline) {
      const flags = await api<{ data?: Record<string, string> }>('/api/v1/status/flags');
      if (flags?.data?.['storage.tsdb.path'] === data) {
        ours = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    if (!ours) {
      child.kill('SIGKILL');
      if (attempt < 5) continue;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`prometheus did not start on a port of its own (${attempt} tries)`);
    }
    return {
      port,
      api,
      async query(expr) {
        const body = await api<{ status: string; error?: string; data: { result: PromSample[] } }>(
          `/api/v1/query?query=${encodeURIComponent(expr)}`,
        );
        if (body === null) return null;
        if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
        return body.data.result;
      },
      stop() {
        child.kill('SIGKILL');
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}
