/**
 * Public constructors of the Redis brokers and of the standalone server that
 * load node-redis and Express only when called, so that `require('atr')`
 * stays light for apps on the memory broker.
 */
import type { Broker } from './broker';
import type { RedisBrokerOptions } from './redis';
import type { RedisClusterBrokerOptions } from './redis-cluster';
import type { Atr } from '../atr';
import type { StandaloneOptions, StandaloneServer } from '../server/standalone';
import type { Hub } from '../server/hub';
import type { AtrMetrics } from '../metrics';

/**
 * A Redis broker with tuning the URL cannot carry (ping interval, timeouts, backoff).
 *
 * @example
 * const atr = createAtr({ broker: createRedisBroker({ url: process.env.REDIS_URL, pingInterval: 5000, pingTimeout: 2000 }) });
 */
export function createRedisBroker(options: RedisBrokerOptions): Broker {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { RedisBroker } = require('./redis') as typeof import('./redis');
  return new RedisBroker(options);
}

/**
 * A Redis Cluster broker (sharded pub/sub).
 *
 * @example
 * const atr = createAtr({ broker: createRedisClusterBroker({ url: 'redis+cluster://10.0.0.1:7000,10.0.0.2:7000' }) });
 */
export function createRedisClusterBroker(options: RedisClusterBrokerOptions): Broker {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { RedisClusterBroker } = require('./redis-cluster') as typeof import('./redis-cluster');
  return new RedisClusterBroker(options);
}

/**
 * The `atr-server` app in your own process: the router at `/`, `/healthz`, `/readyz`, `/metrics`.
 *
 * @example
 * const server = createStandaloneServer(createAtr({ broker: process.env.REDIS_URL }), { port: 7777 });
 * await server.listen();
 * process.once('SIGTERM', () => void server.close());
 */
export function createStandaloneServer(atr: Atr, options?: StandaloneOptions): StandaloneServer {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const standalone = require('../server/standalone') as typeof import('../server/standalone');
  return standalone.createStandaloneServer(atr, options);
}

/**
 * Prometheus metrics of an Atr and its hub, for an app that mounts the router itself.
 *
 * @example
 * const metrics = createMetrics(atr, getHub(atr));
 * app.get('/metrics', async (_req, res) => res.type(metrics.contentType).send(await metrics.render()));
 */
export function createMetrics(atr: Atr, hub: Hub): AtrMetrics {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const metrics = require('../metrics') as typeof import('../metrics');
  return metrics.createMetrics(atr, hub);
}
