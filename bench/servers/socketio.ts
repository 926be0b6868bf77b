/**
 * The peer: Socket.IO 4 with @socket.io/redis-adapter, websocket transport
 * only; each client joins the room of its scope (the `scope` query value).
 * Messages come from @socket.io/redis-emitter in the driver.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { createClient } from 'redis';
import { Server } from 'socket.io';
import { serve } from './harness';

serve(async ({ redisUrl, prefix }) => {
  const pub = createClient({ url: redisUrl });
  const sub = pub.duplicate();
  pub.on('error', () => undefined);
  sub.on('error', () => undefined);
  await Promise.all([pub.connect(), sub.connect()]);
  const server = http.createServer();
  const io = new Server(server, {
    transports: ['websocket'],
    adapter: createAdapter(pub, sub, { key: `${prefix}sio` }),
  });
  io.on('connection', (socket) => {
    void socket.join(`organization.${String(socket.handshake.query.scope)}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      io.disconnectSockets(true);
      await new Promise((resolve) => io.close(resolve));
      await Promise.all([pub.quit().catch(() => undefined), sub.quit().catch(() => undefined)]);
    },
  };
});
