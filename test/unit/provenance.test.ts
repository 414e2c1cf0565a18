// Provenance: what a run records about what made it (config.json's `provenance`), and how an older run
// without it reads ("unknown"). The end-to-end check (a real run's config.json) is in cli-defend.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestInput, inputsOf, productVersion } from '../../src/runs/provenance';
import { provenanceFacts, UNKNOWN } from '../../src/shared/provenance';
import type { JobConfig } from '../../src/runs/config';

test('an older run without provenance shows every field as unknown; a partial one shows what it has', () => {
  const none = provenanceFacts(undefined);
  assert.deepEqual(
    none.map(([k]) => k),
    ['Version', 'Engine', 'Kernels', 'Node', 'tfjs', 'Platform', 'CPU'],
  );
  assert.ok(none.every(([, v]) => v === UNKNOWN));
  const some = new Map(provenanceFacts({ version: '0.0.9', inputs: [{ role: 'data', path: 'x.bin', sha256: 'ab' }, { path: 3 }] }));
  assert.equal(some.get('Version'), '0.0.9');
  assert.equal(some.get('Node'), UNKNOWN);
  assert.equal(some.get('SHA-256 data'), 'ab (x.bin)');
  assert.equal(some.get('SHA-256 unknown'), 'unknown (unknown)');
});

test('digests: a file, a folder over relative paths and contents, the embedded digits, a #option suffix, a missing path', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nad-prov-'));
  try {
    writeFileSync(join(dir, 'a.bin'), 'hello');
    mkdirSync(join(dir, 'set', 'sub'), { recursive: true });
    writeFileSync(join(dir, 'set', 'sub', 'b'), 'B');
    writeFileSync(join(dir, 'set', 'a'), 'A');
    const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
    assert.equal(digestInput('data', join(dir, 'a.bin')).sha256, sha('hello'));
    assert.equal(digestInput('data', join(dir, 'a.bin#coarse')).sha256, sha('hello'));
    const folder = digestInput('data', join(dir, 'set'));
    assert.deepEqual(
      { sha256: folder.sha256, files: folder.files, bytes: folder.bytes },
      { sha256: sha('a\0Asub/b\0B'), files: 2, bytes: 2 },
    );
    assert.equal(digestInput('data', 'mnist').sha256, 'embedded');
    assert.equal(digestInput('data', join(dir, 'nope')).sha256, 'missing');
    const cfg = { kind: 'train', data: join(dir, 'a.bin'), test: join(dir, 'a.bin'), model: 'auto' } as unknown as JobConfig;
    assert.deepEqual(inputsOf(cfg), [['data', join(dir, 'a.bin')]]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the product version is the package version', () => {
  assert.match(productVersion(), /^\d+\.\d+\.\d+/);
});
