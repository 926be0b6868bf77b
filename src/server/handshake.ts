/**
 * The two ways a websocket request reaches atr: as a raw upgrade (the checks
 * run before the handshake, a refusal is an HTTP status and no 101), or
 * already upgraded by express-ws (the checks run after it, a refusal is a
 * close code). Either way a refused or abandoned request never gets a reactor,
 * so it never subscribes.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import type { Atr } from '../atr';
import { AtrError, codes } from '../errors';
import type { Admission } from './admission';
import { admit, closeCodeOf, paramsOf, segmentsOf } from './admission';
import type { Hub } from './hub';
import { handshakeProblem, refuseUpgrade } from './upgrade';

function ignoreError(): void {
  // Errors of a socket in its handshake (ECONNRESET) end it; nothing to report.
}

/** A client that left while the checks ran: its socket is destroyed or half closed. */
function gone(socket: Duplex): boolean {
  const state = (socket as unknown as { _readableState?: { ended?: boolean } })._readableState;
  return socket.destroyed || !socket.writable || state?.ended === true;
}

function refused(atr: Atr, hub: Hub, admission: Exclude<Admission, { ok: true }>, request: IncomingMessage): void {
  hub.metrics.refused++;
  atr.options.logger.debug({ status: admission.status, reason: admission.reason, url: request.url }, 'atr: websocket request refused');
}

/** Runs the checks with the handshake's socket tracked, so that close() can end it. */
/**
 * false while the broker has never been reached. Once it has, a socket is
 * accepted even during an outage: the broker subscribes its channel again
 * when it is back, and the client is served from then on.
 */
async function brokerReachable(atr: Atr): Promise<boolean> {
  try {
    await atr.connect();
    return true;
  } catch {
    return false;
  }
}

async function check(atr: Atr, hub: Hub, handle: { destroy(): void }, request: IncomingMessage, rest: string, query: string): Promise<Admission> {
  const segments = segmentsOf(rest);
  if (!segments) return { ok: false, status: 400, reason: 'malformed percent-encoding in the path' };
  hub.handshakes.add(handle);
  hub.metrics.handshakesPending = hub.handshakes.size;
  // An authenticator or scope stuck on a dead database must not hold sockets
  // forever: past one heartbeat interval the request is refused with 503.
  const limit = atr.options.heartbeatInterval;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<Admission>((resolve) => {
    timer = setTimeout(() => {
      atr.reportError(new AtrError(codes.SERVER_AUTHENTICATOR, `The authenticator and scope took longer than ${limit} ms (heartbeatInterval)`), { where: 'admission' });
      resolve({ ok: false, status: 503, reason: 'checks timed out' });
    }, limit);
  });
  try {
    const admission = await Promise.race([admit(atr, { request, params: paramsOf(query), segments }), deadline]);
    // A broker never reached could serve the socket nothing: say "try again
    // later" before the upgrade rather than upgrade and close it at once.
    if (admission.ok && !(await brokerReachable(atr))) return { ok: false, status: 503, reason: 'broker unavailable' };
    return admission;
  } catch (err) {
    atr.reportError(err, { where: 'admission' });
    return { ok: false, status: 500, reason: 'admission failed' };
  } finally {
    clearTimeout(timer);
    hub.handshakes.delete(handle);
    hub.metrics.handshakesPending = hub.handshakes.size;
  }
}

/** An upgrade seen before anybody answered it: refuse with a status, or complete the handshake. */
export function handleUpgradeRequest(atr: Atr, hub: Hub, request: IncomingMessage, socket: Duplex, head: Buffer, rest: string, query: string): void {
  socket.on('error', ignoreError);
  const refuse = (status: number) => {
    hub.metrics.refused++;
    refuseUpgrade(socket, status);
  };
  if (hub.closed) return refuse(503);
  const problem = handshakeProblem(request);
  if (problem !== undefined) return refuse(problem);

  check(atr, hub, socket, request, rest, query).then((admission) => {
    if (gone(socket) || hub.closed) {
      socket.destroy();
      return;
    }
    if (!admission.ok) {
      refused(atr, hub, admission, request);
      refuseUpgrade(socket, admission.status);
      return;
    }
    socket.removeListener('error', ignoreError);
    hub.wss.handleUpgrade(request, socket, head, (ws) => {
      hub.accept(ws, admission.scopes, admission.user, admission.resume);
    });
  });
}

/**
 * A socket express-ws upgraded before atr saw the request (the router was
 * not attached to the server yet): the same checks, refusals as close codes.
 */
export function handleUpgradedSocket(atr: Atr, hub: Hub, ws: WebSocket, request: IncomingMessage, rest: string, query: string): void {
  ws.on('error', ignoreError);
  // express-ws's server has its own frame limit (100 MiB); hold this socket to atr's.
  const receiver = (ws as unknown as { _receiver?: { _maxPayload?: number } })._receiver;
  if (receiver && typeof receiver._maxPayload === 'number') receiver._maxPayload = atr.options.maxPayload;
  if (hub.closed) {
    ws.close(1001, 'server closing');
    return;
  }
  const handle = { destroy: () => ws.terminate() };
  check(atr, hub, handle, request, rest, query).then((admission) => {
    ws.removeListener('error', ignoreError);
    if (ws.readyState !== 1 || hub.closed) {
      ws.terminate();
      return;
    }
    if (!admission.ok) {
      refused(atr, hub, admission, request);
      ws.on('error', ignoreError);
      ws.close(closeCodeOf(admission.status), admission.reason);
      return;
    }
    hub.accept(ws, admission.scopes, admission.user, admission.resume);
  });
}
