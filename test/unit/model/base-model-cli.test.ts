import { createReadStream } from 'node:fs';
import { access, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, type MockInstance, vi } from 'vitest';
import { EXIT } from '../../../lib/cli/exit-codes.ts';
import { main } from '../../../lib/cli/main.ts';
import { WeightsError } from '../../../lib/errors.ts';
import { downloadFile, UnavailableError } from '../../../lib/model/download.ts';
import { writeKerasVgg16H5 } from '../../helpers/model/keras-h5.ts';

let dir: string;
let h5: string;
let server: Server;
let base: string;
let requests = 0;

/** Serves the test .h5 at /vgg16.h5 with a Content-Length (like Google storage), 404 elsewhere. */
function serve(): Promise<Server> {
  const s = createServer((req, res) => {
    requests++;
    if (req.url !== '/vgg16.h5') {
      res.writeHead(404).end('not found');
      return;
    }
    stat(h5).then(
      (st) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(st.size) });
        createReadStream(h5).pipe(res);
      },
      () => res.writeHead(500).end(),
    );
  });
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r(s)));
}

/** A loopback port with nothing listening: bind one, then close it. */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

let out: MockInstance<typeof console.log>;
let err: MockInstance<typeof console.error>;
const stdout = () => out.mock.calls.map((c) => c.join(' ')).join('\n');
const stderr = () => err.mock.calls.map((c) => c.join(' ')).join('\n');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tlearn-cli-base-'));
  h5 = join(dir, 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5');
  await writeKerasVgg16H5(h5, { seed: 4 });
  server = await serve();
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => server.close(r));
  await rm(dir, { recursive: true, force: true });
});
beforeAll(() => {
  out = vi.spyOn(console, 'log').mockImplementation(() => {});
  err = vi.spyOn(console, 'error').mockImplementation(() => {});
});
afterEach(() => {
  out.mockClear();
  err.mockClear();
});

describe('tlearn base-model --help', () => {
  it.each([[['--help']], [['import', '--help']], [['fetch', '-h']]])(
    'prints usage of import and fetch for %j',
    async (args) => {
      const code = await main(['base-model', ...args]);
      expect(code).toBe(EXIT.OK);
      expect(stdout()).toMatch(/usage: tlearn base-model import FILE\.h5 \[--out DIR\]/);
      expect(stdout()).toMatch(/tlearn base-model fetch \[--url URL\] \[--out DIR\]/);
      expect(stdout()).toMatch(/4 cannot reach the download URL/);
    },
  );
});

describe('tlearn base-model import', () => {
  it('converts a Keras file into a tfjs folder and prints the weights id', async () => {
    // Act
    const target = join(dir, 'imported');
    const code = await main(['base-model', 'import', h5, '--out', target]);
    // Assess
    expect(stderr()).not.toMatch(/error/);
    expect(code).toBe(EXIT.OK);
    const id = /weights id: ([0-9a-f]{16})/.exec(stdout())?.[1];
    expect(id).toBeDefined();
    expect(stdout()).toContain(`BASE_MODEL_URI=${target}`);
    const json = JSON.parse(await readFile(join(target, 'model.json'), 'utf8'));
    expect(json.userDefinedMetadata.tlearn.weightsId).toBe(id);
  });

  it('is a usage error without a file (exit 2)', async () => {
    expect(await main(['base-model', 'import'])).toBe(EXIT.USAGE);
    expect(stderr()).toMatch(/import needs the Keras file/);
  });

  it('is a usage error for an unknown sub-command (exit 2)', async () => {
    expect(await main(['base-model', 'convert', 'x.h5'])).toBe(EXIT.USAGE);
    expect(stderr()).toMatch(/unknown sub-command 'convert'/);
  });

  it('fails with the reason for a broken file (exit 1)', async () => {
    expect(await main(['base-model', 'import', join(dir, 'absent.h5'), '--out', join(dir, 'x')])).toBe(
      EXIT.FAILURE,
    );
    expect(stderr()).toMatch(/cannot read .*absent\.h5: ENOENT/);
  });
});

describe('tlearn base-model fetch', () => {
  it('downloads from --url with a progress display, imports, and prints the same id as import', async () => {
    // Prepare
    const target = join(dir, 'fetched');
    const written: string[] = [];
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    // Act
    let code: number;
    try {
      code = await main(['base-model', 'fetch', '--url', `${base}/vgg16.h5`, '--out', target]);
    } finally {
      write.mockRestore();
    }
    // Assess
    expect(code).toBe(EXIT.OK);
    expect(written.join('')).toMatch(/download \(KiB\) \[#+\] \d+\/\d+ 100%/);
    const fetchedId = /weights id: ([0-9a-f]{16})/.exec(stdout())?.[1];
    await access(join(target, 'model.json'));
    out.mockClear();
    await main(['base-model', 'import', h5, '--out', join(dir, 'again')]);
    expect(/weights id: ([0-9a-f]{16})/.exec(stdout())?.[1]).toBe(fetchedId);
  });

  it('fails fast with exit 4 and says what to do when the host cannot be reached', async () => {
    const port = await closedPort();
    const started = Date.now();
    const code = await main([
      'base-model',
      'fetch',
      '--url',
      `http://127.0.0.1:${port}/vgg16.h5`,
      '--out',
      join(dir, 'x'),
    ]);
    expect(code).toBe(EXIT.UNAVAILABLE);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(stderr()).toContain(
      `cannot reach 127.0.0.1:${port} (ECONNREFUSED); you are offline? Download the file elsewhere and run \`tlearn base-model import FILE\``,
    );
  });

  it('fails with exit 1 naming the HTTP status when the file is not there', async () => {
    const code = await main(['base-model', 'fetch', '--url', `${base}/nothing.h5`, '--out', join(dir, 'x')]);
    expect(code).toBe(EXIT.FAILURE);
    expect(stderr()).toMatch(/download of http:\/\/127\.0\.0\.1:\d+\/nothing\.h5 failed: HTTP 404/);
  });

  it('rejects --url that is not http(s) as a usage error', async () => {
    expect(await main(['base-model', 'fetch', '--url', 'ftp://example.test/x.h5'])).toBe(EXIT.USAGE);
  });
});

describe('downloadFile', () => {
  it('checks the md5 and keeps no partial file when it differs', async () => {
    const dest = join(dir, 'bad-md5.h5');
    const e = await downloadFile(`${base}/vgg16.h5`, dest, { md5: '0'.repeat(32) }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(WeightsError);
    expect((e as Error).message).toMatch(/has md5 [0-9a-f]{32}, expected 0{32}/);
    await expect(access(dest)).rejects.toThrow();
    await expect(access(`${dest}.part`)).rejects.toThrow();
  });

  it('returns the md5 and size of what it saved', async () => {
    const dest = join(dir, 'ok.h5');
    const before = requests;
    const res = await downloadFile(`${base}/vgg16.h5`, dest);
    expect(res.bytes).toBe((await stat(h5)).size);
    expect(res.md5).toMatch(/^[0-9a-f]{32}$/);
    expect((await readFile(dest)).equals(await readFile(h5))).toBe(true);
    expect(requests).toBe(before + 1);
  });

  it('treats a connection refused as unavailable', async () => {
    const port = await closedPort();
    await expect(downloadFile(`http://127.0.0.1:${port}/f`, join(dir, 'f'))).rejects.toBeInstanceOf(
      UnavailableError,
    );
  });
});
