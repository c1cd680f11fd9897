"""Driving JupyterLab's Guild sidebar and the /guild page in Chromium, and
measuring what a person sees: WCAG contrast computed from the rendered
colours, text that is cut or lies outside its box.

``open_sidebar(page, server)`` opens /lab and the sidebar (the launcher's
tile) and returns its locator; ``set_sidebar_width`` drags the split
handle; ``use_theme`` switches JupyterLab's theme from the palette;
``contrast_report(page, selector)`` checks every visible element with text
of its own under ``selector``; ``cut_report(page, selector)`` lists what
is cut, scrolls sideways or reaches past the box.
"""

from __future__ import annotations

import re

from conftest import wait_for

SIDEBAR = "#guild-jupyter-sidebar"


def palette(page, text: str) -> None:
    """Runs the command palette's first match for ``text`` (once JupyterLab
    has loaded: its splash screen is gone)."""
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=60_000)
    box = page.locator(".lm-CommandPalette-input")
    # The shortcut is lost when pressed before JupyterLab listens: press it
    # again until the palette shows (up to 3 times).
    for attempt in range(3):
        page.keyboard.press("Control+Shift+C")
        try:
            box.wait_for(state="visible", timeout=5_000)
            break
        except Exception:
            if attempt == 2:
                raise
    box.fill(text)
    page.locator(".lm-CommandPalette-item", has_text=text).first.wait_for(timeout=10_000)
    box.press("Enter")


def open_lab(page, server, path: str = "") -> None:
    page.goto(server.lab_url(path))
    if not path:
        page.locator(".jp-Launcher").wait_for(timeout=60_000)
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=60_000)


def open_sidebar(page, server=None):
    """Opens the Guild sidebar (from the palette; /lab first when ``server``
    is given) and returns its locator once it shows a summary."""
    if server is not None:
        open_lab(page, server)
    palette(page, "Open Guild Sidebar")
    sidebar = page.locator(SIDEBAR)
    sidebar.wait_for(state="visible", timeout=20_000)
    return sidebar


def set_sidebar_width(page, width: int) -> None:
    """Drags the handle between the left area and the main area."""
    box = page.locator(SIDEBAR).bounding_box()
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle").first.bounding_box()
    x, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + width - box["width"], y, steps=5)
    page.mouse.up()
    wait_for(lambda: abs(page.locator(SIDEBAR).bounding_box()["width"] - width) <= 2, timeout=5,
             message=f"a {width} px sidebar")


def use_theme(page, name: str) -> None:
    """Switches JupyterLab's theme (``JupyterLab Dark``) and waits for it."""
    palette(page, f"Use Theme: {name}")
    page.wait_for_function(f"() => document.body.dataset.jpThemeName === {name!r}", timeout=30_000)
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=30_000)


def status_item_text(page) -> str:
    return page.locator(".jp-GuildStatus").inner_text().strip()


# The WCAG 2 contrast of each visible element that has text of its own:
# its colour over the backgrounds it lies on (alpha composed up to the
# first opaque one, else white), both as rendered (getComputedStyle).
CONTRAST_JS = r"""(selector) => {
  const parse = (s) => {
    const m = /rgba?\(([^)]+)\)/.exec(s || '');
    if (!m) return null;
    const p = m[1].split(/[\s,\/]+/).filter((x) => x).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const over = (top, bottom) => top.slice(0, 3).map((v, i) => v * top[3] + bottom[i] * (1 - top[3])).concat([1]);
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let acc = [255, 255, 255, 1];
    for (const c of layers.reverse()) acc = over(c, acc);
    return acc;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const root = document.querySelector(selector);
  const failures = [];
  let checked = 0;
  for (const el of [root, ...root.querySelectorAll('*')]) {
    const own = Array.from(el.childNodes).some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || (el.tagName === 'BUTTON' && el.disabled)) continue;
    const bg = background(el);
    const fg = over(parse(style.color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    checked += 1;
    if (ratio < 4.5) {
      failures.push(`${el.tagName.toLowerCase()}.${String(el.className).replace(/ /g, '.')} ` +
                    `"${el.textContent.trim().slice(0, 40)}": ${ratio.toFixed(2)} (${style.color} on rgb(${bg.slice(0, 3).map(Math.round)}))`);
    }
  }
  return {checked, failures, background: lum(background(root))};
}"""


def contrast_report(page, selector: str) -> dict:
    """``{"checked": n, "failures": [...], "background": relative luminance}``."""
    return page.evaluate(CONTRAST_JS, selector)


# Elements under the selector that are cut (ellipsis or hidden overflow),
# scroll sideways, or reach past the root's left or right edge.
CUT_JS = r"""(selector) => {
  const root = document.querySelector(selector);
  const box = root.getBoundingClientRect();
  const out = [];
  if (root.scrollWidth > root.clientWidth + 1) out.push(`the root scrolls sideways: ${root.scrollWidth} > ${root.clientWidth}`);
  for (const el of root.querySelectorAll('*')) {
    if (!el.getClientRects().length || el.closest('pre')) continue;
    const style = getComputedStyle(el);
    const name = `${el.tagName.toLowerCase()}.${String(el.className.baseVal ?? el.className).replace(/ /g, '.')}`;
    if (el.clientWidth && el.scrollWidth > el.clientWidth + 1 && style.overflowX !== 'visible')
      out.push(`${name} cut: ${el.scrollWidth} > ${el.clientWidth} "${el.textContent.slice(0, 40)}"`);
    if (style.textOverflow === 'ellipsis' && el.scrollWidth > el.clientWidth)
      out.push(`${name} ends in an ellipsis "${el.textContent.slice(0, 40)}"`);
    for (const r of el.getClientRects()) {
      if (r.width && (r.right > box.right + 1 || r.left < box.left - 1)) {
        out.push(`${name} outside the box: ${Math.round(r.left)}..${Math.round(r.right)} of ` +
                 `${Math.round(box.left)}..${Math.round(box.right)} "${el.textContent.slice(0, 40)}"`);
        break;
      }
    }
  }
  return out;
}"""


def cut_report(page, selector: str) -> list[str]:
    return page.evaluate(CUT_JS, selector)


def words(text: str) -> list[str]:
    """The words of a rendered text, in order (whitespace and line breaks folded)."""
    return re.findall(r"\S+", text)
