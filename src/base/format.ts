// Byte sizes for people: what the doctor's findings and the log summary print.
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** "1.20 GiB", "512 MiB", "3.5 MiB": two decimals in GiB, one below 10 MiB. */
export function formatBytes(bytes: number): string {
  return bytes >= GiB
    ? `${(bytes / GiB).toFixed(2)} GiB`
    : `${(bytes / MiB).toFixed(bytes >= 10 * MiB ? 0 : 1)} MiB`;
}
