/**
 * A trial's colour: the same in its table row, its chart line and its
 * scatter point, by the trial's place in the sweep (the server's order,
 * which new trials extend), so colours stay put while the sweep grows.
 * Twelve hues readable on light and dark backgrounds; a thirteenth trial
 * takes the first hue again (the hover names every line).
 */
const PALETTE = [
  '#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948',
  '#b07aa1', '#ff9da7', '#9c755f', '#17becf', '#bcbd22', '#8c6bb1'
];

export function trialColor(index: number): string {
  return PALETTE[((index % PALETTE.length) + PALETTE.length) % PALETTE.length];
}
