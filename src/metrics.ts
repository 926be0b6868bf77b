/**
 * Prometheus metrics of one Atr (prom-client), in a registry of their own so
 * that two instances in one process, or the app's own metrics, do not clash.
 * Values are read when scraped: the hub and the broker keep plain counters,
 * nothing here runs on a timer.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { Atr } from './atr';
import type { Hub, HubMetrics } from './server/hub';

export interface AtrMetrics {
  readonly registry: Registry;
  readonly contentType: string;
  /** The Prometheus text exposition. */
  render(): Promise<string>;
  /** Stops listening to the Atr and its broker. */
  close(): void;
}

const HUB_COUNTERS: [keyof HubMetrics, string, string][] = [
  ['eventsReceived', 'atr_events_received_total', 'Messages received from the broker.'],
  ['deliveries', 'atr_deliveries_total', 'Messages written to websocket clients.'],
  ['deliveriesDropped', 'atr_deliveries_dropped_total', 'Messages not written (socket closing or too slow).'],
  ['slowClientsClosed', 'atr_slow_clients_closed_total', 'Connections closed with 1013 for not reading fast enough.'],
  ['refused', 'atr_refused_total', 'Websocket requests refused.'],
  ['heartbeatTimeouts', 'atr_heartbeat_timeouts_total', 'Connections terminated for not answering pings.'],
  ['rateLimited', 'atr_rate_limited_total', 'Connections closed with 1008 for sending too many messages.'],
  ['clientErrors', 'atr_client_errors_total', 'Malformed or unknown client messages.'],
  ['subscribeFailures', 'atr_subscribe_failures_total', 'Broker subscriptions that failed.'],
  ['replayed', 'atr_replayed_total', 'Events sent from the history to clients that resumed.'],
];

/**
 * @example
 * const metrics = createMetrics(atr, getHub(atr));
 * app.get('/metrics', async (_req, res) => res.type(metrics.contentType).send(await metrics.render()));
 */
export function createMetrics(atr: Atr, hub: Hub): AtrMetrics {
  const registry = new Registry();
  const m = hub.metrics;
  const broker = atr.broker;
  let published = 0;
  let dropped = 0;
  let reconnects = 0;
  let downs = 0;
  const onPublished = () => { published++; };
  const onDropped = () => { dropped++; };
  const onReconnect = () => { reconnects++; };
  const onDown = () => { downs++; };
  atr.on('published', onPublished);
  atr.on('dropped', onDropped);
  broker.on('reconnect', onReconnect);
  broker.on('down', onDown);

  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()); } });
  // A counter that mirrors a monotonic number kept elsewhere.
  const counter = (name: string, help: string, read: () => number) => {
    let seen = 0;
    return new Counter({
      name, help, registers: [registry],
      collect() {
        const now = read();
        if (now > seen) this.inc(now - seen);
        seen = Math.max(seen, now);
      },
    });
  };

  gauge('atr_connections', 'Open websocket connections.', () => m.connections);
  gauge('atr_subscriptions', 'Broker subscriptions held by this process (one per channel with listeners).', () => m.channels);
  gauge('atr_handshakes_pending', 'Websocket requests whose checks are running.', () => m.handshakesPending);
  gauge('atr_broker_ready', '1 while the broker works, 0 while it is down.', () => (broker.ready ? 1 : 0));
  for (const [key, name, help] of HUB_COUNTERS) counter(name, help, () => Number(m[key] ?? 0));
  counter('atr_events_published_total', 'Events this process handed to the broker.', () => published);
  counter('atr_events_publish_failed_total', 'Events this process could not publish (dropped).', () => dropped);
  counter('atr_broker_reconnects_total', 'Times the broker came back after an outage.', () => reconnects);
  counter('atr_broker_outages_total', 'Times the broker lost its connection.', () => downs);

  return {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
    close() {
      atr.off('published', onPublished);
      atr.off('dropped', onDropped);
      broker.off('reconnect', onReconnect);
      broker.off('down', onDown);
    },
  };
}
