/**
 * A stand-in for an app that publishes (see AppProcess): its own Atr on Redis;
 * each stdin line is published once the broker is ready; stdin's end closes it.
 */
import { createInterface } from 'node:readline';
import { createAtr } from '../../src/atr';
import { silentLogger } from '../../src/logger';

const atr = createAtr({ broker: process.argv[2], logger: silentLogger });
const reply = (value: object) => process.stdout.write(JSON.stringify(value) + '\n');

async function whenReady(ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!atr.broker.ready && Date.now() < end) {
    // atr.connect() resolves at once once it succeeded, even while the broker is down: wait between looks.
    await atr.connect().catch(() => undefined);
    if (!atr.broker.ready) await new Promise((r) => setTimeout(r, 50));
  }
}

let chain: Promise<unknown> = whenReady().then(() => reply({ ready: true }));
createInterface({ input: process.stdin })
  .on('line', (line) => {
    const input = JSON.parse(line) as { scope: string; name: string; data: unknown };
    chain = chain.then(async () => {
      await whenReady();
      try {
        reply({ id: await atr.publish(input) });
      } catch (err) {
        reply({ error: (err as Error).message });
      }
    });
  })
  .on('close', () => {
    void chain.then(() => atr.close());
  });
