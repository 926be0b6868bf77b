// Placeholder until the Redis broker lands; replaced by the real implementation.
import { MemoryBroker } from './memory';
import type { HistoryOptions } from './broker';
import type { Logger } from '../logger';
export interface RedisClusterBrokerOptions { url: string; history: HistoryOptions; logger: Logger; keyPrefix: string }
export class RedisClusterBroker extends MemoryBroker {
  constructor(_options: RedisClusterBrokerOptions) { super(); throw new Error('RedisClusterBroker is not built yet'); }
}
