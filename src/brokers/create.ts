import type { Broker, HistoryOptions } from './broker';
import { MemoryBroker } from './memory';
import type { Logger } from '../logger';

export interface BrokerFactoryOptions {
  history: HistoryOptions;
  logger: Logger;
  channelPrefix: string;
}

/** The broker named by the `broker` option. Redis modules load only when asked for. */
export function createBroker(spec: string | Broker, options: BrokerFactoryOptions): Broker {
  if (typeof spec !== 'string') return spec;
  if (spec === 'memory') return new MemoryBroker({ history: options.history });
  if (/^rediss?\+cluster:\/\//.test(spec)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { RedisClusterBroker } = require('./redis-cluster') as typeof import('./redis-cluster');
    return new RedisClusterBroker({ url: spec, history: options.history, logger: options.logger, keyPrefix: options.channelPrefix });
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { RedisBroker } = require('./redis') as typeof import('./redis');
  return new RedisBroker({ url: spec, history: options.history, logger: options.logger, keyPrefix: options.channelPrefix });
}
