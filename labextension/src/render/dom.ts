/**
 * Small DOM helpers, shared by the sidebar and the /guild page. Rows are
 * updated in place (keyed by run or queue id) instead of rebuilt on each
 * snapshot, so a button under the pointer stays the same element between
 * snapshots and a click lands.
 */

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text = ''
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (className) {
    el.className = className;
  }
  if (text) {
    el.textContent = text;
  }
  return el;
}

/** Sets text only when it changed (no layout work for unchanged rows). */
export function setText(el: HTMLElement, text: string): void {
  if (el.textContent !== text) {
    el.textContent = text;
  }
}

export function setAttr(el: Element, name: string, value: string): void {
  if (el.getAttribute(name) !== value) {
    el.setAttribute(name, value);
  }
}

/** Makes ``container``'s children the elements for ``items``, in order,
 * reusing the element of each key that is already there. */
export function syncList<T>(
  container: HTMLElement,
  items: T[],
  key: (item: T) => string,
  create: (item: T) => HTMLElement,
  update: (el: HTMLElement, item: T) => void
): void {
  const existing = new Map<string, HTMLElement>();
  for (const child of Array.from(container.children) as HTMLElement[]) {
    const k = child.dataset.key;
    if (k !== undefined) {
      existing.set(k, child);
    }
  }
  const keep = new Set<HTMLElement>();
  items.forEach((item, i) => {
    const k = key(item);
    let el = existing.get(k);
    if (!el) {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    keep.add(el);
    const at = container.children[i];
    if (at !== el) {
      container.insertBefore(el, at || null);
    }
  });
  for (const child of Array.from(container.children) as HTMLElement[]) {
    if (!keep.has(child)) {
      child.remove();
    }
  }
}

/** A button that is disabled while its action runs. */
export function button(label: string, title: string, act: () => Promise<void> | void): HTMLButtonElement {
  const b = h('button', 'gj-button', label);
  b.title = title;
  b.addEventListener('click', ev => {
    ev.stopPropagation();
    b.disabled = true;
    void Promise.resolve(act()).finally(() => {
      b.disabled = false;
    });
  });
  return b;
}

const SVG = 'http://www.w3.org/2000/svg';
/** The box the view model's ``spark_points`` are drawn in (views.SPARK_WIDTH, SPARK_HEIGHT). */
export const SPARK_WIDTH = 64;
export const SPARK_HEIGHT = 16;

/** An inline sparkline: the view model's polyline ``points``, drawn as given. */
export function sparkline(points: string, width = SPARK_WIDTH, height = SPARK_HEIGHT): SVGSVGElement {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('class', 'gj-spark');
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', points);
  svg.appendChild(line);
  return svg;
}
