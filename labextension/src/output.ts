/**
 * A run's output that follows: GET runs/ID/output?since=OFFSET, appending
 * each piece, until the server says the run has ended and all of it was
 * read. Polls quickly while text keeps coming, every second otherwise, and
 * backs off on errors (one line, no console flood).
 */
import { calls } from './api';
import { h, setText } from './dom';
import { keepTail, nextDelay } from './format';

const KEEP_CHARS = 200000;

export class OutputView {
  readonly node = h('section', 'jp-GuildSidebar-output');
  private readonly title = h('span', 'jp-GuildSidebar-outputTitle');
  private readonly state = h('span', 'jp-GuildSidebar-muted');
  private readonly pre = h('pre', 'jp-GuildSidebar-outputText');
  private runId: string | null = null;
  private offset = 0;
  private failures = 0;
  private timer: number | null = null;
  private generation = 0;

  constructor() {
    const head = h('div', 'jp-GuildSidebar-sectionHead');
    const close = h('button', 'jp-GuildSidebar-button', 'close');
    close.title = 'Stop following this output';
    close.addEventListener('click', () => this.close());
    head.append(this.title, this.state, close);
    this.node.append(head, this.pre);
    this.node.hidden = true;
  }

  get following(): string | null {
    return this.runId;
  }

  follow(id: string, shortId: string): void {
    this.close();
    this.runId = id;
    this.offset = 0;
    this.failures = 0;
    this.generation += 1;
    this.pre.textContent = '';
    setText(this.title, `Output of ${shortId}`);
    setText(this.state, 'loading…');
    this.node.hidden = false;
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
  }

  private async poll(generation: number): Promise<void> {
    const id = this.runId;
    if (id === null || generation !== this.generation) {
      return;
    }
    let delay = 1000;
    try {
      const piece = await calls.output(id, this.offset);
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
        delay = 200;
      }
      this.offset = piece.offset;
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
      delay = nextDelay(1000, this.failures);
    }
    this.timer = window.setTimeout(() => void this.poll(generation), delay);
  }
}
