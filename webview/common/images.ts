// Images the engine sends (a defense's recovered triggers, an attack's trigger gallery): drawn pixel for
// pixel on canvases, scaled up by an integer factor, with their captions; the run panel and the attack
// preview page draw them the same way.
import type { FigureImage, ImagesFigure } from '../../src/shared/run-events';
import { h } from './vscode-api';

/** An image's pixels on a canvas, each pixel a `scale` x `scale` square. */
export function imageCanvas(img: FigureImage, scale: number): HTMLCanvasElement {
  const canvas = h('canvas', {
    width: String(img.width),
    height: String(img.height),
    class: 'figure-image',
    role: 'img',
    'aria-label': img.caption,
  });
  canvas.style.width = `${img.width * scale}px`;
  canvas.style.height = `${img.height * scale}px`;
  const ctx = canvas.getContext('2d');
  if (!ctx) return canvas;
  const bytes = Uint8Array.from(atob(img.pixels), (c) => c.charCodeAt(0));
  const data = ctx.createImageData(img.width, img.height);
  for (let i = 0; i < img.width * img.height; i++) {
    const at = i * img.channels;
    data.data[i * 4] = bytes[at];
    data.data[i * 4 + 1] = bytes[img.channels === 3 ? at + 1 : at];
    data.data[i * 4 + 2] = bytes[img.channels === 3 ? at + 2 : at];
    data.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(data, 0, 0);
  return canvas;
}

/** A figure of images: its title, then a grid (three to a row when the figure says so). */
export function imagesFigure(fig: ImagesFigure): HTMLElement {
  const scale = Math.max(1, Math.floor(96 / Math.max(1, fig.images[0]?.height ?? 32)));
  return h(
    'figure',
    { class: 'image-figure', 'data-images': fig.id },
    h('figcaption', {}, fig.title),
    h(
      'div',
      { class: fig.columns === 3 ? 'image-grid cols-3' : 'image-grid' },
      ...fig.images.map((img) =>
        h(
          'div',
          { class: img.marked ? 'image-cell marked' : 'image-cell' },
          imageCanvas(img, scale),
          h('div', { class: 'image-caption' }, img.caption),
        ),
      ),
    ),
  );
}
