/**
 * The standalone websocket server behind `atr-server`: the atr router mounted
 * at `/` of a small Express app (`ws://host:7777/organization/7`), with
 * `GET /healthz` (the process lives), `GET /readyz` (503 while the broker is
 * down or the server is stopping) and `GET /metrics` (Prometheus text).
 * `close()` stops accepting, closes the sockets with 1001, drops the broker
 * subscriptions and closes the broker, within a bound.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Atr } from '../atr';
import { createMetrics } from '../metrics';
import type { AtrMetrics } from '../metrics';
import { atrRouter } from './router';
import type { AtrRouter } from './router';

export interface StandaloneOptions {
  host?: string;
  port?: number;
  /** Longest wait for a graceful close, ms (10000); then the rest is cut. */
  shutdownTimeout?: number;
}

export interface StandaloneServer {
  readonly app: express.Express;
  readonly server: http.Server;
  readonly router: AtrRouter;
  readonly metrics: AtrMetrics;
  /** Listens; resolves to the address (port 0 picks a free one). */
  listen(): Promise<AddressInfo>;
  /** Graceful close; resolves within `shutdownTimeout`. */
  close(): Promise<void>;
}

/**
 * @example
 * const atr = createAtr({ broker: 'redis://127.0.0.1:6379', authenticateWith: TokenAuthenticator });
 * const standalone = createStandaloneServer(atr, { port: 7777 });
 * await standalone.listen();
 * process.once('SIGTERM', () => standalone.close().then(() => process.exit(0)));
 */
export function createStandaloneServer(atr: Atr, options: StandaloneOptions = {}): StandaloneServer {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 7777;
  const shutdownTimeout = options.shutdownTimeout ?? 10_000;
  const logger = atr.options.logger;
  const router = atrRouter(atr);
  const metrics = createMetrics(atr, router.hub);
  let stopping = false;

  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', (_req, res) => {
    const ready = !stopping && atr.broker.ready;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', broker: atr.broker.kind, brokerReady: atr.broker.ready, stopping });
  });
  app.get('/metrics', (_req, res, next) => {
    metrics.render().then((text) => res.type(metrics.contentType).send(text), next);
  });
  app.use(router);

  const server = http.createServer(app);
  router.attach(server, '/');

  let closing: Promise<void> | undefined;
  async function shutDown(): Promise<void> {
    stopping = true;
    logger.info({ event: 'shutdown' }, 'atr-server: shutting down');
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
    // Idle keep-alive connections would hold server.close() open.
    server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), shutdownTimeout);
    });
    const graceful = (async () => {
      await router.close();
      metrics.close();
      await atr.close();
      await stopped;
    })();
    const outcome = await Promise.race([graceful.then(() => 'done' as const), bound]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      logger.warn({ event: 'shutdown', shutdownTimeout }, 'atr-server: graceful shutdown took too long; cutting the remaining connections');
      server.closeAllConnections();
    }
  }

  return {
    app,
    server,
    router,
    metrics,
    listen() {
      return new Promise<AddressInfo>((resolve, reject) => {
        const onError = (err: Error) => reject(err);
        server.once('error', onError);
        server.listen(port, host, () => {
          server.off('error', onError);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    close() {
      closing ??= shutDown();
      return closing;
    },
  };
}
