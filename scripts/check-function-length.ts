/**
 * Fails on a function longer than {@link MAX_FUNCTION_LINES} lines in lib/, infra/ or functions/
 * (run by `npm run lint`): declarations, expressions, arrows, methods and constructors, from the
 * line of their first token to the line of their last. Long functions here were the ones nobody
 * could review; a part that deserves a name gets a function.
 *
 *   node bin/run-ts.js scripts/check-function-length.ts [ROOT] [--list N]   exit 1 and one line per function
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';

export const MAX_FUNCTION_LINES = 150;

/** One function and its length. */
export interface FunctionLength {
  file: string;
  line: number;
  name: string;
  lines: number;
}

function* sources(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(p);
    else if (/\.(ts|mts)$/.test(entry.name)) yield p;
  }
}

function nameOf(node: ts.Node): string {
  const named = (node as { name?: ts.Node }).name;
  if (named) return named.getText();
  if (ts.isConstructorDeclaration(node)) {
    const cls = node.parent;
    return `${ts.isClassLike(cls) && cls.name ? cls.name.getText() : 'class'} constructor`;
  }
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) return parent.name.getText();
  return '(anonymous)';
}

/** Lengths of every function of one TypeScript source. */
export function functionLengths(file: string, text: string): FunctionLength[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: FunctionLength[] = [];
  const visit = (node: ts.Node): void => {
    if (
      ts.isFunctionDeclaration(node) ||
      ts.isFunctionExpression(node) ||
      ts.isArrowFunction(node) ||
      ts.isMethodDeclaration(node) ||
      ts.isConstructorDeclaration(node) ||
      ts.isGetAccessor(node) ||
      ts.isSetAccessor(node)
    ) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
      out.push({ file, line: first + 1, name: nameOf(node), lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** Every function of `root`'s lib/, infra/ and functions/, longest first. */
export function allFunctionLengths(root: string): FunctionLength[] {
  const out: FunctionLength[] = [];
  for (const top of ['lib', 'infra', 'functions']) {
    if (!existsSync(join(root, top))) continue;
    for (const file of sources(join(root, top))) {
      const rel = relative(root, file).split(sep).join('/');
      out.push(...functionLengths(rel, readFileSync(file, 'utf8')));
    }
  }
  return out.sort((a, b) => b.lines - a.lines);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = process.argv.slice(2);
  if (args.includes('--help')) {
    console.log('usage: check-function-length.ts [ROOT] [--list N]  (functions over 150 lines: exit 1)');
    process.exit(0);
  }
  const listAt = args.indexOf('--list');
  const list = listAt >= 0 ? Number(args[listAt + 1]) : undefined;
  const rootArg = args.find((a, i) => !a.startsWith('--') && (listAt < 0 || i !== listAt + 1));
  const root = resolve(rootArg ?? fileURLToPath(new URL('..', import.meta.url)));
  const all = allFunctionLengths(root);
  if (list !== undefined)
    for (const f of all.slice(0, list)) console.log(`${f.lines}\t${f.file}:${f.line} ${f.name}`);
  const long = all.filter((f) => f.lines > MAX_FUNCTION_LINES);
  for (const f of long)
    console.error(
      `${f.file}:${f.line}: ${f.name} is ${f.lines} lines (at most ${MAX_FUNCTION_LINES}): split it`,
    );
  if (long.length > 0) process.exit(1);
  console.log(`functions: none over ${MAX_FUNCTION_LINES} lines`);
}
