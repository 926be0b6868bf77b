import { MemoryBroker } from '../../src/brokers/memory';
import { brokerSuite } from '../helpers/broker-suite';

brokerSuite('memory', async (history) => new MemoryBroker({ history }));
