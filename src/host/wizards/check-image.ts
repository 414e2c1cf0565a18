// "NAD: Check Image with STRIP…" on PNG/JPEG files in the Explorer: is this image triggered? The model and
// the defender's clean data are asked; a STRIP detection run (`nad detect strip --inspect`) superimposes clean
// images on each given image, compares its entropy with the threshold set on the clean data (5% FRR), and its
// panel shows each image with its verdict. The test sets are not scored (detectCount 0), so it takes a minute
// or two on CIFAR instead of several.
import * as vscode from 'vscode';
import { basename } from 'node:path';
import type { JobConfig } from '../../runs/config';
import type { RunTask } from '../runs/manager';
import { ask, folderOrWarn, jobBase, launch, newDraft, stem, type WizardHost } from './commands';
import { askData, askModel, askSubset } from './steps';

/** Clean images scored for the threshold: fewer than a full detection (1,000), enough for a 5% quantile. */
export const CHECK_THRESHOLD_IMAGES = 500;

export async function checkImageWizard(
  host: WizardHost,
  image?: vscode.Uri,
  selected?: readonly vscode.Uri[],
): Promise<RunTask | undefined> {
  const images = (selected?.length ? selected : image ? [image] : []).filter((u) => /\.(png|jpe?g)$/i.test(u.fsPath));
  if (images.length === 0) {
    void vscode.window.showInformationMessage('NAD: right-click PNG or JPEG images in the Explorer and choose "Check Image with STRIP".');
    return undefined;
  }
  const folder = folderOrWarn(images[0]);
  if (!folder) return undefined;
  const d = newDraft(folder);
  const names = images.map((u) => basename(u.fsPath)).join(', ');
  const ok = await ask(`NAD: Check ${names} with STRIP`, d, [
    askModel('The model the images are fed to'),
    askData("Clean data of the defender: superimposed on the images, and the threshold's images"),
    askSubset,
  ]);
  if (!ok || !d.model || !d.data) return undefined;
  const config: JobConfig = {
    kind: 'defend',
    method: 'strip',
    mode: 'detect',
    name: `strip-${stem(images[0].fsPath).replace(/\.(png|jpe?g)$/i, '')}`,
    ...jobBase(d),
    model: d.model,
    data: d.data,
    ...d.clean,
    training: {},
    params: { detectCount: 0, thresholdCount: CHECK_THRESHOLD_IMAGES },
    inspect: images.map((u) => u.fsPath),
  };
  return launch(host, d, config, `STRIP check of ${names}`, () => void checkImageWizard(host, image, selected));
}
