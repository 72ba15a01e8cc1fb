/**
 * Sets variables and remembers the old values so `restore()` puts them back (the local stack sets
 * its handlers' environment this way and restores it on stop).
 */
export function envScope() {
  const saved = new Map<string, string | undefined>();
  return {
    set(name: string, value: string | undefined) {
      if (!saved.has(name)) saved.set(name, process.env[name]);
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    },
    setDefault(name: string, value: string) {
      if (process.env[name] === undefined) this.set(name, value);
    },
    restore() {
      for (const [name, value] of saved) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      saved.clear();
    },
  };
}
