/**
 * A run's output that follows: GET runs/ID/output?since=OFFSET (the path
 * of the row's ``output`` action), appending each piece, until the server
 * says the run has ended and all of it was read. Polls quickly while text
 * keeps coming, every second otherwise, and backs off on errors (one line,
 * no console flood).
 */
import { GuildClient } from '../client';
import { keepTail, nextDelay } from '../format';
import { h, setText } from './dom';

const KEEP_CHARS = 200000;
const QUICK_MS = 200;
const IDLE_MS = 1000;

export class OutputView {
  readonly node = h('section', 'gj-output');
  private readonly title = h('span', 'gj-output-title');
  private readonly state = h('span', 'gj-muted gj-output-state');
  private readonly pre = h('pre', 'gj-output-text');
  private runId: string | null = null;
  private path = '';
  private offset = 0;
  private failures = 0;
  private timer: number | null = null;
  private generation = 0;

  constructor(private readonly client: GuildClient) {
    const head = h('div', 'gj-section-head');
    const close = h('button', 'gj-button gj-output-close', 'close');
    close.type = 'button';
    close.title = 'Stop following this output';
    close.addEventListener('click', () => this.close());
    head.append(this.title, this.state, close);
    this.node.append(head, this.pre);
    this.node.hidden = true;
  }

  get following(): string | null {
    return this.runId;
  }

  /** Follows the output at ``path`` (relative to /guild/api/) of run ``id``. */
  follow(id: string, shortId: string, path: string): void {
    this.close();
    this.runId = id;
    this.path = path;
    this.offset = 0;
    this.failures = 0;
    this.generation += 1;
    this.pre.textContent = '';
    setText(this.title, `Output of ${shortId}`);
    setText(this.state, 'loading…');
    this.node.hidden = false;
    this.node.dataset.run = id;
    this.node.dataset.done = 'false';
    void this.poll(this.generation);
  }

  close(): void {
    this.runId = null;
    this.generation += 1;
    if (this.timer !== null) {
      window.clearTimeout(this.timer);
      this.timer = null;
    }
    this.node.hidden = true;
    delete this.node.dataset.run;
  }

  private async poll(generation: number): Promise<void> {
    if (this.runId === null || generation !== this.generation) {
      return;
    }
    let delay = IDLE_MS;
    try {
      const piece = await this.client.output(this.path, this.offset);
      if (generation !== this.generation) {
        return;
      }
      this.failures = 0;
      if (piece.text) {
        const atEnd = this.pre.scrollTop + this.pre.clientHeight >= this.pre.scrollHeight - 4;
        this.pre.textContent = keepTail((this.pre.textContent || '') + piece.text, KEEP_CHARS);
        if (atEnd) {
          this.pre.scrollTop = this.pre.scrollHeight;
        }
        delay = QUICK_MS;
      }
      this.offset = piece.offset;
      this.node.dataset.status = piece.status;
      this.node.dataset.done = String(piece.done);
      setText(this.state, piece.done ? `${piece.status} · end of output` : `${piece.status} · following`);
      if (piece.done) {
        return;
      }
    } catch (e) {
      if (generation !== this.generation) {
        return;
      }
      this.failures += 1;
      setText(this.state, (e as Error).message);
      delay = nextDelay(IDLE_MS, this.failures);
    }
    this.timer = window.setTimeout(() => void this.poll(generation), delay);
  }
}
