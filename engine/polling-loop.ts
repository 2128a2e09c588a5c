/**
 * Runs a poll every `intervalMs` until stopped: the next poll is scheduled only when the last one has
 * settled, so polls never overlap; a failed poll goes to `onError` and the next one tries again.
 *
 * `wake()` runs the next poll now instead of at the end of the interval (or, if a poll is in progress, right
 * after it): whoever knows that there is something to read (a transaction just mined) need not wait a tick.
 *
 * The interval may be a function, asked after each poll for the wait before the next: a poller that backs off
 * after a failure, or polls again at once after a poll that did something, says so there.
 */
export class PollingLoop {
  private timer: NodeJS.Timeout | null = null;
  private loop: Promise<void> | null = null;
  private stopped = true;
  private polling = false;
  private again = false;
  private tick: (() => void) | null = null;

  constructor(private readonly poll: () => Promise<unknown>) {}

  start(interval: number | (() => number), onError: (error: unknown) => void): void {
    if (!this.stopped) return;
    this.stopped = false;
    const tick = () => {
      this.timer = null;
      this.polling = true;
      this.again = false;
      this.loop = this.poll()
        .then(
          () => undefined,
          (error) => onError(error),
        )
        .then(() => {
          this.polling = false;
          if (!this.stopped)
            this.timer = setTimeout(tick, this.again ? 0 : typeof interval === "function" ? interval() : interval);
        });
    };
    this.tick = tick;
    tick();
  }

  /** The next poll now (or right after the one in progress). */
  wake(): void {
    if (this.stopped) return;
    if (this.polling) {
      this.again = true;
      return;
    }
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
      this.tick?.();
    }
  }

  /** Stops scheduling and waits for a poll in progress to settle. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.loop;
  }
}
