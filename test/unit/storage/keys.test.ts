import { describe, expect, it } from 'vitest';
import {
  featureErrorKey,
  featureKey,
  MODEL_VERSION_RE,
  newModelVersion,
  parseFeatureKey,
  parseImageKey,
} from '../../../lib/storage/keys.ts';

describe('parseImageKey', () => {
  it('takes the label from the folder', () => {
    const r = parseImageKey('datasets/pets/cat/1.jpg');
    expect(r).toEqual({
      ok: true,
      image: { dataset: 'pets', label: 'cat', file: '1.jpg', key: 'datasets/pets/cat/1.jpg' },
    });
  });

  it('takes the label from a Kaggle-style name', () => {
    const r = parseImageKey('datasets/pets/dog.123.jpg');
    expect(r.ok && r.image.label).toBe('dog');
    expect(r.ok && r.image.file).toBe('dog.123.jpg');
  });

  it('keeps unicode, spaces and nested folders verbatim', () => {
    const r = parseImageKey('datasets/pets/chat noir/été/photo 1+2.PNG');
    expect(r).toMatchObject({ ok: true, image: { label: 'chat noir', file: 'été/photo 1+2.PNG' } });
  });

  it.each([
    ['models/pets/x.jpg', 'not-a-dataset-key'],
    ['datasets/Pets/cat/1.jpg', 'invalid-dataset-name'],
    ['datasets/../cat/1.jpg', 'invalid-dataset-name'],
    [`datasets/${'a'.repeat(64)}/cat/1.jpg`, 'invalid-dataset-name'],
    ['datasets/pets/cat/', 'folder-marker'],
    ['datasets/pets/cat/.DS_Store', 'hidden-file'],
    ['datasets/pets/cat/notes.txt', 'not-an-image'],
    ['datasets/pets/noextension', 'not-an-image'],
    ['datasets/pets/1.jpg', 'invalid-label'],
    ['datasets/pets/../1.jpg', 'invalid-label'],
    ['datasets/pets/cat/../x/1.jpg', 'invalid-label'],
    [`datasets/pets/${'l'.repeat(101)}/1.jpg`, 'invalid-label'],
    [`datasets/pets/cat/${'f'.repeat(1010)}.jpg`, 'key-too-long'],
  ])('skips %s with reason %s', (key, reason) => {
    const r = parseImageKey(key);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toBe(reason);
  });
});

describe('feature keys', () => {
  it('round-trips an image to its feature and error keys', () => {
    const img = { dataset: 'pets', label: 'cat', file: 'a/b c.jpg' };
    expect(featureKey(img)).toBe('features/pets/cat/a/b c.jpg.npy');
    expect(featureErrorKey(img)).toBe('features/pets/cat/a/b c.jpg.error.json');
    expect(parseFeatureKey(featureKey(img))).toEqual({ ...img, kind: 'npy' });
    expect(parseFeatureKey(featureErrorKey(img))).toEqual({ ...img, kind: 'error' });
    expect(parseFeatureKey('features/pets/cat.npy')).toBeUndefined();
  });
});

describe('newModelVersion', () => {
  it('makes sortable version ids', () => {
    const v = newModelVersion(new Date('2026-11-28T10:34:18.123Z'), 'abc123');
    expect(v).toBe('20261128T103418Z-abc123');
    expect(MODEL_VERSION_RE.test(v)).toBe(true);
  });
});
