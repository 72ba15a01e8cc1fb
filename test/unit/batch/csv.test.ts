import { describe, expect, it } from 'vitest';
import { batchCsv, csvField } from '../../../lib/batch/csv.ts';

describe('batchCsv', () => {
  it('writes one column per class in the given order and an error column', () => {
    const csv = batchCsv(
      ['cat', 'dog'],
      [
        {
          key: 'datasets/pets/a.jpg',
          label: 'dog',
          confidence: 0.75,
          abstained: false,
          scores: [
            { label: 'dog', probability: 0.75 },
            { label: 'cat', probability: 0.25 },
          ],
        },
        { key: 'datasets/pets/b.jpg', error: 'CorruptImage: image is truncated' },
      ],
    );
    expect(csv.split('\r\n')).toEqual([
      'key,label,confidence,abstained,p:cat,p:dog,error',
      'datasets/pets/a.jpg,dog,0.75,false,0.25,0.75,',
      'datasets/pets/b.jpg,,,,,,CorruptImage: image is truncated',
      '',
    ]);
  });

  it('writes an abstained row with an empty label and its scores', () => {
    const csv = batchCsv(
      ['a', 'b'],
      [
        {
          key: 'k.png',
          label: null,
          confidence: 0.5,
          abstained: true,
          scores: [
            { label: 'a', probability: 0.5 },
            { label: 'b', probability: 0.5 },
          ],
        },
      ],
    );
    expect(csv.split('\r\n')[1]).toBe('k.png,,0.5,true,0.5,0.5,');
  });

  it('quotes fields holding commas, quotes or line breaks', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('two\nlines')).toBe('"two\nlines"');
    const csv = batchCsv(['x'], [{ key: 'datasets/d/l/a,b.png', error: 'bad "image"' }]);
    expect(csv.split('\r\n')[1]).toBe('"datasets/d/l/a,b.png",,,,,"bad ""image"""');
  });
});

describe('results.csv and spreadsheets', () => {
  it('escapes cells that a spreadsheet would run as a formula', () => {
    // prepare
    const starts = ['=1+1', '+1', '-2', '@SUM(A1)', '\tx', '\r=1'];

    // act
    const fields = starts.map(csvField);

    // assess
    expect(fields).toEqual(["'=1+1", "'+1", "'-2", "'@SUM(A1)", "'\tx", `"'\r=1"`]);
  });

  it('escapes labels and keys in rows but keeps the numbers as numbers', () => {
    // prepare
    const rows = [
      {
        key: 'datasets/d/=cmd|calc/a,b.png',
        label: '=HYPERLINK("http://x")',
        confidence: 0.5,
        abstained: false,
        scores: [{ label: '=HYPERLINK("http://x")', probability: 0.5 }],
      },
    ];

    // act
    const csv = batchCsv(['=HYPERLINK("http://x")'], rows);

    // assess
    expect(csv.split('\r\n')).toEqual([
      `key,label,confidence,abstained,"p:=HYPERLINK(""http://x"")",error`,
      `"datasets/d/=cmd|calc/a,b.png","'=HYPERLINK(""http://x"")",0.5,false,0.5,`,
      '',
    ]);
    expect(csvField('-')).toBe("'-");
  });
});
