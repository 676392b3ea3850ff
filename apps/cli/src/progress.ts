/**
 * A progress line on stderr: bytes and lines sent, rate, percentage when the size is known. On a
 * terminal it redraws one line; otherwise (CI logs, redirected stderr) it prints a line every 5 s.
 */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export class Progress {
  private bytes = 0;
  private lines = 0;
  private last = 0;
  private readonly started = Date.now();
  private readonly tty: boolean;

  constructor(
    private readonly total: number | undefined,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly enabled = true,
  ) {
    this.tty = Boolean(out.isTTY);
  }

  add(bytes: number, lines: number): void {
    this.bytes += bytes;
    this.lines += lines;
    const now = Date.now();
    if (now - this.last >= (this.tty ? 150 : 5_000)) {
      this.last = now;
      this.draw(false);
    }
  }

  done(): void {
    this.draw(true);
  }

  render(): string {
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    const rate = `${formatBytes(this.bytes / secs)}/s`;
    const lines = `${this.lines.toLocaleString("en-US")} lines`;
    if (!this.total) return `sent ${formatBytes(this.bytes)}, ${lines}, ${rate}`;
    const frac = Math.min(1, this.bytes / this.total);
    const width = 24;
    const fill = Math.round(frac * width);
    return `[${"#".repeat(fill)}${" ".repeat(width - fill)}] ${(frac * 100).toFixed(1).padStart(5)}% ${formatBytes(this.bytes)}/${formatBytes(this.total)}, ${lines}, ${rate}`;
  }

  private draw(final: boolean): void {
    if (!this.enabled) return;
    if (this.tty) this.out.write(`\r${this.render()}\x1b[K${final ? "\n" : ""}`);
    else this.out.write(`${this.render()}\n`);
  }
}
