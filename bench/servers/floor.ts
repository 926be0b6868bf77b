/**
 * The floor: a plain `ws` server whose Redis subscriber sends each message to
 * every socket of the scope in a loop, `ws.send(message)` per socket. What a
 * user would write by hand in an afternoon.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient } from 'redis';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { serve } from './harness';

serve(async ({ redisUrl, prefix }) => {
  const subscriber = createClient({ url: redisUrl });
  subscriber.on('error', () => undefined);
  await subscriber.connect();
  const rooms = new Map<string, Set<WebSocket>>();
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, request) => {
    const channel = `${prefix}floor:${request.url}`;
    let room = rooms.get(channel);
    if (!room) {
      const sockets = new Set<WebSocket>();
      room = sockets;
      rooms.set(channel, sockets);
      void subscriber.subscribe(channel, (message: string) => {
        for (const socket of sockets) socket.send(message);
      });
    }
    room.add(ws);
    ws.on('close', () => room.delete(ws));
    ws.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', 4096, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.close();
      await subscriber.quit().catch(() => undefined);
    },
  };
});
