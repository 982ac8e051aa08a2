// What /proc says about another process before fragstat asks it anything: does it exist, is it
// this user's, is it Node.js, does it share this process's namespaces, does it handle SIGUSR1,
// which TCP ports does it listen on, where would its inspector bind. Pure reads: no N-API, no
// signal sent.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import * as path from 'node:path';

/** Why fragstat cannot attach to a process, with what to do about it. */
export class AttachError extends Error {
  /**
   * ERR_FRAGSTAT_ATTACH_<REASON>: NO_PACKAGE, NO_PROCESS, PERMISSION, NOT_NODE, NAMESPACE,
   * NO_SIGUSR1, NO_INSPECTOR, EXPOSED, EVALUATE.
   */
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = `ERR_FRAGSTAT_ATTACH_${code}`;
  }
}

/** One listening TCP socket of a process. */
export interface ListeningSocket {
  /** The local address as text: "127.0.0.1", "0.0.0.0", "::1", "::". */
  address: string;
  port: number;
  inode: number;
}

/** The IPv4 address in /proc/net/tcp's hex (one little-endian 32-bit word). */
function ipv4(hex: string): string {
  const n = parseInt(hex, 16);
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24].join('.');
}

/** The IPv6 address in /proc/net/tcp6's hex (four little-endian 32-bit words), shortened a little. */
function ipv6(hex: string): string {
  const groups: string[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    const bytes = [6, 4, 2, 0].map((i) => word.slice(i, i + 2)).join('');
    groups.push(bytes.slice(0, 4), bytes.slice(4, 8));
  }
  const text = groups.map((g) => parseInt(g, 16).toString(16)).join(':');
  if (text === '0:0:0:0:0:0:0:0') return '::';
  if (text === '0:0:0:0:0:0:0:1') return '::1';
  const mapped = /^0:0:0:0:0:ffff:([0-9a-f]+):([0-9a-f]+)$/.exec(text);
  if (mapped) {
    const a = parseInt(mapped[1], 16);
    const b = parseInt(mapped[2], 16);
    return `::ffff:${a >> 8}.${a & 0xff}.${b >> 8}.${b & 0xff}`;
  }
  return text;
}

/** Listening sockets in the text of /proc/<pid>/net/tcp or tcp6 (state 0A), by inode. */
export function parseListening(text: string, v6: boolean): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '0A') continue;
    const [addr, port] = f[1].split(':');
    out.push({ address: v6 ? ipv6(addr) : ipv4(addr), port: parseInt(port, 16), inode: Number(f[9]) });
  }
  return out;
}

/** The socket inodes among `pid`'s open file descriptors. */
function socketInodes(pid: number): Set<number> {
  const inodes = new Set<number>();
  const dir = `/proc/${pid}/fd`;
  for (const fd of readdirSync(dir)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(path.join(dir, fd)));
      if (m) inodes.add(Number(m[1]));
    } catch {
      // closed meanwhile
    }
  }
  return inodes;
}

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/** Every TCP socket listening in `pid`'s network namespace (any process's). */
export function namespaceListeners(pid: number | 'self'): ListeningSocket[] {
  return [
    ...parseListening(readOr(`/proc/${pid}/net/tcp`, ''), false),
    ...parseListening(readOr(`/proc/${pid}/net/tcp6`, ''), true),
  ];
}

/** The TCP sockets `pid` itself listens on: its namespace's listeners whose inode it holds. */
export function listeningSockets(pid: number): ListeningSocket[] {
  const mine = socketInodes(pid);
  return namespaceListeners(pid).filter((s) => mine.has(s.inode));
}

/** Whether `address` (as parseListening writes it) is a loopback address. */
export function isLoopback(address: string): boolean {
  return (
    /^127\./.test(address) || address === '::1' || /^::ffff:127\./.test(address) || address === 'localhost'
  );
}

/** The address to connect to for a socket listening on `address` (a wildcard is reached on loopback). */
export function connectAddress(address: string): string {
  if (address === '0.0.0.0') return '127.0.0.1';
  if (address === '::') return '::1';
  return address.replace(/^::ffff:/, '');
}

function uidOf(pid: number): number | null {
  const m = /^Uid:\s+(\d+)/m.exec(readOr(`/proc/${pid}/status`, ''));
  return m ? Number(m[1]) : null;
}

function userName(uid: number): string {
  const line = readOr('/etc/passwd', '')
    .split('\n')
    .find((l) => l.split(':')[2] === String(uid));
  return line ? line.split(':')[0] : `uid ${uid}`;
}

/** The process's argv, from /proc/<pid>/cmdline (empty if unreadable). */
export function commandLine(pid: number): string[] {
  return readOr(`/proc/${pid}/cmdline`, '').split('\0').filter(Boolean);
}

/** NODE_OPTIONS in the process's environment as it started, or null if unreadable or unset. */
function nodeOptions(pid: number): string | null {
  const env = readOr(`/proc/${pid}/environ`, '').split('\0');
  const v = env.find((e) => e.startsWith('NODE_OPTIONS='));
  return v === undefined ? null : v.slice('NODE_OPTIONS='.length);
}

/** What a process looks like to fragstat: its executable and command, and whether it is Node.js. */
export interface TargetProcess {
  pid: number;
  /** The executable (/proc/<pid>/exe), or null when it cannot be read. */
  executable: string | null;
  argv: string[];
}

const nodeName = /^(node|nodejs)(\d+(\.\d+)*)?$/;

/**
 * Checks, in this order, that `pid` exists, can be signalled by this user, shares this process's
 * PID, mount and network namespaces, runs Node.js and handles SIGUSR1 (so that the signal opens
 * its inspector instead of ending it). Throws an AttachError saying what to do otherwise.
 */
export function checkTarget(pid: number): TargetProcess {
  try {
    process.kill(pid, 0);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ESRCH') throw new AttachError('NO_PROCESS', `there is no process ${pid}`);
    if (code === 'EPERM') {
      const uid = uidOf(pid);
      const who = uid === null ? 'another user' : userName(uid);
      throw new AttachError(
        'PERMISSION',
        `process ${pid} belongs to ${who}, and this user may not signal it: run fragstat as that user ` +
          `(sudo -u ${uid === null ? '<user>' : who} npx fragstat attach ${pid}) or as root`,
      );
    }
    throw err;
  }
  for (const ns of ['pid', 'mnt', 'net']) {
    let mine: string;
    let theirs: string;
    try {
      mine = readlinkSync(`/proc/self/ns/${ns}`);
      theirs = readlinkSync(`/proc/${pid}/ns/${ns}`);
    } catch {
      continue; // no namespaces to compare (an old kernel, a restricted /proc)
    }
    if (mine !== theirs) {
      throw new AttachError(
        'NAMESPACE',
        `process ${pid} runs in another ${ns === 'pid' ? 'PID' : ns === 'mnt' ? 'mount' : 'network'} ` +
          'namespace (a container): fragstat loads itself into the process by a path that the ' +
          'container does not see, and reaches its inspector on a loopback it does not share. Run ' +
          'fragstat inside the container instead, e.g. `kubectl exec POD -- npx fragstat attach 1` or ' +
          '`docker exec CONTAINER npx fragstat attach 1` (the pid as the container sees it)',
      );
    }
  }
  let executable: string | null = null;
  try {
    executable = readlinkSync(`/proc/${pid}/exe`);
  } catch {
    // a kernel thread, or a process /proc hides
  }
  const argv = commandLine(pid);
  const isNode =
    (executable !== null && nodeName.test(path.basename(executable.replace(/ \(deleted\)$/, '')))) ||
    (argv.length > 0 && nodeName.test(path.basename(argv[0])));
  if (!isNode) {
    throw new AttachError(
      'NOT_NODE',
      `process ${pid} is not Node.js (${executable ?? argv[0] ?? 'its executable cannot be read'}): ` +
        'fragstat attach works on node processes; find the right one with `pgrep -a node`',
    );
  }
  const status = readOr(`/proc/${pid}/status`, '');
  const caught = /^SigCgt:\s+([0-9a-f]+)/m.exec(status);
  if (caught && (BigInt(`0x${caught[1]}`) & (1n << 9n)) === 0n) {
    throw new AttachError(
      'NO_SIGUSR1',
      `process ${pid} does not handle SIGUSR1 (it runs with --disable-sigusr1, or something reset the ` +
        'signal): sending it would end the process, so fragstat did not. Its inspector cannot be ' +
        'opened from outside; restart it without --disable-sigusr1, or with --inspect=127.0.0.1:0, ' +
        'to be able to attach next time',
    );
  }
  return { pid, executable, argv };
}

/** Where the process would open its inspector, from its command line and NODE_OPTIONS. */
export interface InspectorBinding {
  host: string;
  /** The port, 0 for any free port; 9229 unless an --inspect* option says otherwise. */
  port: number;
  /** The option that set it, or null for Node's default. */
  from: string | null;
}

/** Reads --inspect-port / --inspect / --inspect-brk / --inspect-wait ([host:]port) from `args`, last wins. */
export function inspectorBindingOf(args: string[]): InspectorBinding {
  const b: InspectorBinding = { host: '127.0.0.1', port: 9229, from: null };
  for (let i = 0; i < args.length; i++) {
    const m = /^--(inspect-port|debug-port|inspect|inspect-brk|inspect-wait)(?:=(.*))?$/.exec(args[i]);
    if (!m) continue;
    let value = m[2];
    if (value === undefined && (m[1] === 'inspect-port' || m[1] === 'debug-port')) value = args[++i];
    if (value === undefined || value === '') continue;
    const hp = /^(?:\[?([^\]]*?)\]?:)?(\d+)$/.exec(value);
    if (hp) {
      if (hp[1]) b.host = hp[1];
      b.port = Number(hp[2]);
    } else b.host = value; // a host alone
    b.from = `--${m[1]}=${value}`;
  }
  return b;
}

// node's options that take their value as the next argument (so that it is not the script).
const takesValue =
  /^(-r|--require|--import|--loader|--experimental-loader|-e|--eval|-p|--print|--inspect-port|--debug-port|--title|--conditions|-C)$/;

/** The inspector binding of `pid`: its NODE_OPTIONS, then node's options on its command line (which win). */
export function inspectorBinding(pid: number): InspectorBinding {
  const opts = (nodeOptions(pid) ?? '').split(/\s+/).filter(Boolean);
  const cmd = commandLine(pid).slice(1);
  const own: string[] = [];
  for (let i = 0; i < cmd.length; i++) {
    const a = cmd[i];
    if (a === '--' || !a.startsWith('-')) break; // the script and its arguments
    own.push(a);
    if (takesValue.test(a) && i + 1 < cmd.length) own.push(cmd[++i]);
  }
  return inspectorBindingOf([...opts, ...own]);
}
