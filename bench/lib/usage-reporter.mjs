// Preloaded with `node --import` into a process the benchmark does not control (the `tlearn` CLI),
// so its own peak RSS and CPU time can be read: Node exposes no rusage of child processes, and
// /usr/bin/time is not on every machine. Writes one JSON object to TLEARN_BENCH_USAGE_FILE at exit.
import { writeFileSync } from 'node:fs';

const file = process.env.TLEARN_BENCH_USAGE_FILE;
if (file) {
  process.on('exit', () => {
    const u = process.resourceUsage();
    writeFileSync(
      file,
      JSON.stringify({
        maxRssKB: u.maxRSS,
        userCpuMs: u.userCPUTime / 1000,
        systemCpuMs: u.systemCPUTime / 1000,
        uptimeMs: process.uptime() * 1000,
      }),
    );
  });
}
