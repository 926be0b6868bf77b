/**
 * atr under test: the router in an Express app, attached to its HTTP server,
 * with the Redis broker; anybody may connect, the path is the scope
 * (`/organization/7`). Events come from `atr.publish()` or model inserts in
 * the driver.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { atrRouter, createAtr, getHub } from '../../src/index';
import { silentLogger } from '../../src/logger';
import { fastPath } from '../../src/server/fast-send';
import { serve } from './harness';

serve(async ({ redisUrl, prefix, fastPath: useFastPath }) => {
  fastPath.enabled = useFastPath !== false;
  // ATR_BENCH_HEARTBEAT_MS: only to see what the heartbeat sweep costs; the default is atr's.
  const heartbeat = Number(process.env.ATR_BENCH_HEARTBEAT_MS) || undefined;
  const atr = createAtr({ broker: redisUrl, channelPrefix: `${prefix}atr:`, logger: silentLogger, heartbeatInterval: heartbeat });
  await atr.connect();
  const app = express();
  const router = atrRouter(atr);
  app.use('/', router);
  const server = http.createServer(app);
  router.attach(server, '/');
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
  const hub = getHub(atr);
  return {
    port: (server.address() as AddressInfo).port,
    stats: () => ({ ...hub.metrics }),
    async close() {
      server.close();
      await atr.close();
    },
  };
});
