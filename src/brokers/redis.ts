// Placeholder until the Redis broker lands; replaced by the real implementation.
import { MemoryBroker } from './memory';
import type { HistoryOptions } from './broker';
import type { Logger } from '../logger';
export interface RedisBrokerOptions { url: string; history: HistoryOptions; logger: Logger; keyPrefix: string }
export class RedisBroker extends MemoryBroker {
  constructor(_options: RedisBrokerOptions) { super(); throw new Error('RedisBroker is not built yet'); }
}
