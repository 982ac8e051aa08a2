// A minimal Chrome DevTools Protocol client for Node's inspector: its HTTP endpoints
// (/json/list, /json/version) and a WebSocket client (RFC 6455, client side only) written on
// node:net, since Node 18 and 20 have no WebSocket of their own and fragstat takes no dependency
// for one. No N-API here.
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';

/** One entry of the inspector's /json/list. */
export interface InspectorTarget {
  id: string;
  type: string;
  title: string;
  url: string;
  webSocketDebuggerUrl: string;
}

/** A CDP error answer (`{ error: { code, message } }`) or a broken connection. */
export class InspectorError extends Error {
  /** The CDP error code, when the inspector answered with one. */
  code: number | null;
  constructor(message: string, code: number | null = null) {
    super(message);
    this.code = code;
  }
}

/**
 * GET `path` on host:port and parse the JSON answer; rejects on a non-200 status, a body that is
 * not JSON, or no answer within `timeoutMs`.
 */
export function getJson(host: string, port: number, path: string, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        // The inspector's answers are a few hundred bytes: anything large is not one.
        if (size > 1024 * 1024) req.destroy(new Error('answer too large'));
        else chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`HTTP ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new Error('the answer is not JSON'));
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The inspector's targets on host:port (GET /json/list). */
export async function listTargets(host: string, port: number, timeoutMs = 2000): Promise<InspectorTarget[]> {
  const list = await getJson(host, port, '/json/list', timeoutMs);
  if (!Array.isArray(list)) throw new Error('/json/list did not answer a list');
  return list.filter(
    (t): t is InspectorTarget =>
      t !== null && typeof t === 'object' && typeof t.webSocketDebuggerUrl === 'string',
  );
}

/** Whether host:port answers /json/version as a Node.js inspector does ("Browser": "node.js/v..."). */
export async function isNodeInspector(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  try {
    const v = (await getJson(host, port, '/json/version', timeoutMs)) as { Browser?: unknown } | null;
    return typeof v?.Browser === 'string' && v.Browser.startsWith('node.js/');
  } catch {
    return false;
  }
}

/** A CDP event handler: the event's params. */
export type Listener = (params: Record<string, unknown>) => void;

/** A connected CDP session: commands, events, and the end of the connection. */
export interface InspectorSession {
  /** Sends a CDP command and resolves with its result, or rejects with an InspectorError. */
  send<T = Record<string, unknown>>(method: string, params?: Record<string, unknown>): Promise<T>;
  /** Calls `listener` with the params of every `event` (e.g. "HeapProfiler.addHeapSnapshotChunk"). */
  on(event: string, listener: Listener): void;
  /** Removes a listener added by on(). */
  off(event: string, listener: Listener): void;
  /** Stops reading from the socket (the inspector's messages wait in the kernel) until resume(). */
  pause(): void;
  /** Reads from the socket again after pause(). */
  resume(): void;
  /** Resolves once the connection is gone, whoever ended it. */
  readonly closed: Promise<void>;
  /** Sends a close frame and ends the connection; resolves once the socket is closed. */
  close(): Promise<void>;
}

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
// The largest message accepted from the inspector (a heap snapshot comes in chunks far below it).
const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/** One client frame: FIN, the opcode, masked as RFC 6455 requires of a client. */
export function encodeFrame(opcode: number, payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + 4 + n);
  frame[0] = 0x80 | opcode;
  if (n < 126) frame[1] = 0x80 | n;
  else if (n < 65536) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  const mask = randomBytes(4);
  mask.copy(frame, head);
  for (let i = 0; i < n; i++) frame[head + 4 + i] = payload[i] ^ mask[i & 3];
  return frame;
}

/**
 * Reads server frames from a byte stream: whole messages (continuations joined) go to `onMessage`,
 * control frames to `onControl`.
 */
export class FrameReader {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  // The length of the frame being received, once its header is in: nothing is joined before then.
  private need = 0;
  private fragments: Buffer[] = [];
  private fragmentsBytes = 0;
  private fragmentOpcode = 0;

  constructor(
    private readonly onMessage: (opcode: number, data: Buffer) => void,
    private readonly onControl: (opcode: number, data: Buffer) => void,
  ) {}

  /** Takes the next bytes of the stream; throws on a frame this client cannot accept. */
  push(chunk: Buffer): void {
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    for (;;) {
      if (this.bufferedBytes < Math.max(2, this.need)) return;
      const buf = this.buffered.length === 1 ? this.buffered[0] : Buffer.concat(this.buffered);
      this.buffered = [buf];
      const fin = (buf[0] & 0x80) !== 0;
      const opcode = buf[0] & 0x0f;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        const big = buf.readBigUInt64BE(2);
        if (big > BigInt(MAX_MESSAGE_BYTES)) throw new Error(`frame of ${big} bytes is too large`);
        len = Number(big);
        off = 10;
      }
      const maskOff = off;
      if (masked) off += 4;
      if (buf.length < off + len) {
        this.need = off + len;
        return;
      }
      this.need = 0;
      let payload = buf.subarray(off, off + len);
      if (masked) {
        payload = Buffer.from(payload);
        for (let i = 0; i < len; i++) payload[i] ^= buf[maskOff + (i & 3)];
      }
      const rest = buf.subarray(off + len);
      this.buffered = rest.length ? [rest] : [];
      this.bufferedBytes = rest.length;
      if (opcode >= 8) {
        this.onControl(opcode, payload);
        continue;
      }
      if (opcode !== 0) {
        this.fragmentOpcode = opcode;
        this.fragments = [];
        this.fragmentsBytes = 0;
      }
      // Copy: `payload` is a view into a buffer that later chunks replace.
      this.fragments.push(Buffer.from(payload));
      this.fragmentsBytes += len;
      if (this.fragmentsBytes > MAX_MESSAGE_BYTES) throw new Error('message too large');
      if (fin) {
        const data = this.fragments.length === 1 ? this.fragments[0] : Buffer.concat(this.fragments);
        this.fragments = [];
        this.fragmentsBytes = 0;
        this.onMessage(this.fragmentOpcode, data);
      }
    }
  }
}

/**
 * Opens a WebSocket to `url` (ws://host:port/path, as /json/list gives it) and speaks CDP on it.
 * Rejects if the upgrade fails or does not complete within `timeoutMs`.
 */
export function connectInspector(
  url: string,
  options: { timeoutMs?: number } = {},
): Promise<InspectorSession> {
  const u = new URL(url);
  if (u.protocol !== 'ws:') throw new InspectorError(`not a ws:// URL: ${url}`);
  const timeoutMs = options.timeoutMs ?? 5000;
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 80);
  const key = randomBytes(16).toString('base64');
  const accept = createHash('sha1')
    .update(key + GUID)
    .digest('base64');

  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host, port });
    socket.setNoDelay(true);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new InspectorError(`no WebSocket upgrade from ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    let head = Buffer.alloc(0);
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 64 * 1024) fail(new InspectorError('the upgrade answer has no end'));
        return;
      }
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers.set(l.slice(0, i).trim().toLowerCase(), l.slice(i + 1).trim());
      }
      if (!/^HTTP\/1\.1 101\b/.test(lines[0]))
        return fail(new InspectorError(`upgrade refused: ${lines[0]}`));
      if (headers.get('sec-websocket-accept') !== accept) {
        return fail(new InspectorError('upgrade answered with a wrong Sec-WebSocket-Accept'));
      }
      socket.off('data', onHead);
      socket.off('error', fail);
      clearTimeout(timer);
      const session = new Session(socket);
      const rest = head.subarray(end + 4);
      if (rest.length) session.data(rest);
      resolve(session);
    };
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(
        err instanceof InspectorError ? err : new InspectorError(`cannot connect to ${url}: ${err.message}`),
      );
    };
    socket.on('data', onHead);
    socket.on('error', fail);
    socket.on('connect', () => {
      socket.write(
        `GET ${u.pathname}${u.search} HTTP/1.1\r\n` +
          `Host: ${u.host}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  });
}

class Session implements InspectorSession {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: never) => void; reject: (e: Error) => void; method: string }
  >();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly reader: FrameReader;
  private ended = false;
  readonly closed: Promise<void>;

  constructor(private readonly socket: Socket) {
    this.reader = new FrameReader(
      (opcode, data) => {
        if (opcode === 1) this.message(data.toString('utf8'));
      },
      (opcode, data) => {
        if (opcode === 9) this.write(0xa, data);
        else if (opcode === 8) {
          this.write(0x8, Buffer.alloc(0));
          socket.end();
        }
      },
    );
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        for (const p of this.pending.values()) {
          p.reject(new InspectorError(`the inspector closed the connection before answering ${p.method}`));
        }
        this.pending.clear();
        resolve();
      });
    });
    socket.on('error', () => socket.destroy());
  }

  data(chunk: Buffer): void {
    try {
      this.reader.push(chunk);
    } catch {
      this.socket.destroy();
    }
  }

  private write(opcode: number, payload: Buffer): void {
    if (!this.ended && this.socket.writable) this.socket.write(encodeFrame(opcode, payload));
  }

  private message(text: string): void {
    let m: {
      id?: number;
      result?: unknown;
      error?: { code?: number; message?: string };
      method?: string;
      params?: unknown;
    };
    try {
      m = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof m.id === 'number') {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.error)
        p.reject(new InspectorError(`${p.method}: ${m.error.message ?? 'failed'}`, m.error.code ?? null));
      else p.resolve((m.result ?? {}) as never);
    } else if (typeof m.method === 'string') {
      for (const l of this.listeners.get(m.method) ?? []) l((m.params ?? {}) as Record<string, unknown>);
    }
  }

  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    if (this.ended)
      return Promise.reject(new InspectorError(`the connection is closed: cannot send ${method}`));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: never) => void, reject, method });
      this.write(0x1, Buffer.from(JSON.stringify({ id, method, params })));
    });
  }

  on(event: string, listener: Listener): void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
  }

  off(event: string, listener: Listener): void {
    this.listeners.get(event)?.delete(listener);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): Promise<void> {
    if (!this.ended) {
      this.write(0x8, Buffer.from([0x03, 0xe8])); // 1000: normal closure
      this.socket.end();
      // An inspector that never answers the close frame: give it a moment, then drop the socket.
      const t = setTimeout(() => this.socket.destroy(), 1000);
      void this.closed.then(() => clearTimeout(t));
    }
    return this.closed;
  }
}

// How many bytes of snapshot chunks may wait for the consumer before the socket stops being read.
const SNAPSHOT_HIGH_WATER_BYTES = 16 * 1024 * 1024;

/**
 * Takes a V8 heap snapshot of the session's process and yields its JSON text in the chunks the
 * inspector sends (HeapProfiler.addHeapSnapshotChunk); their concatenation is the .heapsnapshot
 * file. The target is paused while V8 writes the snapshot; a consumer slower than the stream
 * pauses reading from the socket rather than holding the whole text in memory.
 */
export async function* takeHeapSnapshot(session: InspectorSession): AsyncIterable<string> {
  const queue: string[] = [];
  let queuedBytes = 0;
  let paused = false;
  let done = false;
  let failure: Error | null = null;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const onChunk = (params: Record<string, unknown>) => {
    if (typeof params.chunk !== 'string') return;
    queue.push(params.chunk);
    queuedBytes += params.chunk.length;
    if (!paused && queuedBytes > SNAPSHOT_HIGH_WATER_BYTES) {
      paused = true;
      session.pause();
    }
    notify();
  };
  session.on('HeapProfiler.addHeapSnapshotChunk', onChunk);
  // The answer comes after the last chunk.
  session.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false }).then(
    () => {
      done = true;
      notify();
    },
    (err: Error) => {
      failure = err;
      notify();
    },
  );
  try {
    for (;;) {
      if (queue.length) {
        const chunk = queue.shift()!;
        queuedBytes -= chunk.length;
        if (paused && queuedBytes < SNAPSHOT_HIGH_WATER_BYTES / 2) {
          paused = false;
          session.resume();
        }
        yield chunk;
        continue;
      }
      if (failure) throw failure;
      if (done) return;
      await new Promise<void>((r) => (wake = r));
    }
  } finally {
    session.off('HeapProfiler.addHeapSnapshotChunk', onChunk);
    if (paused) session.resume();
  }
}
