/**
 * The example organization app (DESIGN.md, "The example organization app"):
 * Express 5, Objection models, the atr endpoint at /ws, a page at /.
 * `createExampleApp()` starts one and returns it, so that tests can run it
 * in-process on port 0 with a temporary database.
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import expressWs from 'express-ws';
import type { Knex } from 'knex';
import { atrRouter, createAtr, registry } from '../src/index';
import type { Atr, Logger } from '../src/index';
import { ExampleEventSerializer } from './actor';
import { secretFromEnv } from './auth/token';
import { websocketAuth } from './auth/websocket';
import { browserClientSource } from './client-bundle';
import { openDatabase } from './database';
import { bindModels, User } from './models';
import type { Models } from './models';
import { apiRouter } from './routes/api';
import { seed } from './seed';

export interface ExampleAppOptions {
  /** `DATABASE_URL`: an SQLite file path (default example-app/data/example.sqlite3), `postgres://…`, `mysql://…`. */
  databaseUrl?: string;
  /** PostgreSQL only: a schema of its own (tests). */
  databaseSchema?: string;
  /** `REDIS_URL`: the broker; default the in-process memory broker. */
  redisUrl?: string;
  /** Prefix of broker channels (atr's default 'atr:'). */
  channelPrefix?: string;
  /** `PORT` (3000); 0 picks a free one. */
  port?: number;
  /** Address to listen on ('127.0.0.1' when port is 0, else every interface). */
  host?: string;
  /** Origins allowed to open the websocket; default the app's own (`ATR_EXAMPLE_ORIGIN`, or http://localhost:PORT and http://127.0.0.1:PORT). */
  origins?: string[];
  /** Token signing secret (`ATR_EXAMPLE_SECRET`); default random per process. */
  secret?: string;
  logger?: Logger;
}

export interface ExampleApp {
  server: http.Server;
  /** `http://127.0.0.1:<port>` */
  url: string;
  atr: Atr;
  knex: Knex;
  models: Models;
  close(): Promise<void>;
}

export async function createExampleApp(options: ExampleAppOptions = {}): Promise<ExampleApp> {
  const knex = await openDatabase({ url: options.databaseUrl, schema: options.databaseSchema });
  let server: http.Server | undefined;
  let atr: Atr | undefined;
  try {
    await seed(knex);
    const app = express();
    app.disable('x-powered-by');
    server = http.createServer(app);
    // express-ws's ws server re-emits the http server's errors (EADDRINUSE):
    // they are handled where listen() is awaited, not as a crash here.
    expressWs(app, server).getWss().on('error', () => undefined);
    const port = options.port ?? 3000;
    const host = options.host ?? (port === 0 ? '127.0.0.1' : undefined);
    server.listen(port, host);
    await once(server, 'listening');
    const actualPort = (server.address() as AddressInfo).port;
    const origins = options.origins ?? [`http://localhost:${actualPort}`, `http://127.0.0.1:${actualPort}`];

    const secret = options.secret ?? secretFromEnv({});
    const auth = websocketAuth(secret, User.bindKnex(knex));
    atr = createAtr({
      broker: options.redisUrl || 'memory',
      authenticateWith: auth.Authenticator,
      scopeWith: auth.Scope,
      eventSerializer: ExampleEventSerializer,
      allowedOrigins: origins,
      ...(options.channelPrefix ? { channelPrefix: options.channelPrefix } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
    const models = bindModels(knex, atr);
    registry.register(models.Post);
    await atr.connect();

    const router = atrRouter(atr);
    app.use('/ws', router);
    router.attach(server, '/ws');
    app.use('/api', apiRouter(models, secret, atr));
    const clientSource = await browserClientSource();
    app.get('/atr-client.js', (_req, res) => {
      res.type('application/javascript').send(clientSource);
    });
    app.use(express.static(path.join(__dirname, 'public')));

    const url = `http://127.0.0.1:${actualPort}`;
    const openServer = server;
    const openAtr = atr;
    let closing: Promise<void> | undefined;
    return {
      server: openServer,
      url,
      atr: openAtr,
      knex,
      models,
      close: () => (closing ??= (async () => {
        await router.close();
        await openAtr.close();
        openServer.closeAllConnections();
        await new Promise<void>((resolve) => openServer.close(() => resolve()));
        await knex.destroy();
      })()),
    };
  } catch (err) {
    await atr?.close().catch(() => undefined);
    if (server?.listening) await new Promise((r) => server!.close(r));
    await knex.destroy();
    throw err;
  }
}
