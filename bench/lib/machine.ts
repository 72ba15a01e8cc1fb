/**
 * The header of a benchmark run: what machine, runtime and code the numbers belong to.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';

export interface MachineHeader {
  date: string;
  node: string;
  platform: string;
  arch: string;
  /** Logical CPUs Node can use. */
  cores: number;
  cpuModel: string;
  /** SIMD extensions that matter to the engines (from /proc/cpuinfo on Linux). */
  cpuFlags: string[];
  memoryMB: number;
  /** 1/5/15-minute load averages when the run started; above `cores` means the machine was shared. */
  loadAverageStart: number[];
  /** Same, at the end of the run. */
  loadAverageEnd?: number[];
  gitCommit: string;
  /** Uncommitted changes in the tree when the run started. */
  gitDirty: boolean;
  /** Tensor backends / engines the figures used (filled in at the end). */
  backends?: string[];
}

function git(root: string, args: string[]): string {
  try {
    return execFileSync('git', args, {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}

function cpuFlags(): string[] {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const flags = new Set(/^flags\s*:\s*(.*)$/m.exec(info)?.[1]?.split(/\s+/) ?? []);
    return ['avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx_vnni'].filter((f) => flags.has(f));
  } catch {
    return [];
  }
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

/** Reads the machine, Node and git facts of this run. */
export function machineHeader(root: string, now = new Date()): MachineHeader {
  return {
    date: now.toISOString(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    cores: availableParallelism(),
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    cpuFlags: cpuFlags(),
    memoryMB: Math.round(totalmem() / 2 ** 20),
    loadAverageStart: loadavg().map(round2),
    gitCommit: git(root, ['rev-parse', '--short=12', 'HEAD']) || 'unknown',
    gitDirty: git(root, ['status', '--porcelain', '--untracked-files=no']) !== '',
  };
}

/** Current load averages, rounded. */
export function loadAverage(): number[] {
  return loadavg().map(round2);
}
