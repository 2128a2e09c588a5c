/**
 * Runs a poll every `intervalMs` until stopped: the next poll is scheduled only when the last one has
 * settled, so polls never overlap; a failed poll goes to `onError` and the next one tries again.
 */
export class PollingLoop {
  private timer: NodeJS.Timeout | null = null;
  private loop: Promise<void> | null = null;
  private stopped = true;

  constructor(private readonly poll: () => Promise<unknown>) {}

  start(intervalMs: number, onError: (error: unknown) => void): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = () => {
      this.loop = this.poll()
        .then(
          () => undefined,
          (error) => onError(error),
        )
        .then(() => {
          if (!this.stopped) this.timer = setTimeout(tick, intervalMs);
        });
    };
    tick();
  }

  /** Stops scheduling and waits for a poll in progress to settle. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.loop;
  }
}
