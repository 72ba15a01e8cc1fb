import { describe, expect, it } from 'vitest';
import { createStackShutdown } from '../../../lib/local/stack-shutdown.ts';
import { type Log, silentLog } from '../../../lib/util/log.ts';

describe('the stop order of the local stack (lib/local/stack-shutdown.ts)', () => {
  it('stops the front parts first, then the others, the last started first, then runs afterAll', async () => {
    // Prepare
    const order: string[] = [];
    const shutdown = createStackShutdown(silentLog, () => order.push('afterAll'));
    const part = (name: string) => async () => void order.push(name);
    shutdown.add('emulator', part('emulator'));
    shutdown.addFront('api', part('api'));
    shutdown.add('sfn endpoint', part('sfn endpoint'));
    shutdown.add('pollers', part('pollers'));
    shutdown.addFront('demo', part('demo'));

    // Act
    await shutdown.stopAll();

    // Assess
    expect(order).toEqual(['demo', 'api', 'pollers', 'sfn endpoint', 'emulator', 'afterAll']);
  });

  it('goes on past a part that fails to stop, with a warning, and stops nothing twice', async () => {
    // Prepare
    const warnings: string[] = [];
    const log: Log = { ...silentLog, warn: (m) => void warnings.push(m) };
    const stopped: string[] = [];
    const shutdown = createStackShutdown(log, () => {});
    shutdown.add('emulator', async () => void stopped.push('emulator'));
    shutdown.add('pollers', async () => {
      throw new Error('stuck');
    });

    // Act
    await shutdown.stopAll();
    await shutdown.stopAll();

    // Assess
    expect(stopped).toEqual(['emulator']);
    expect(warnings).toEqual(['stopping pollers failed']);
  });
});
