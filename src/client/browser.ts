/**
 * The browser bundle (dist/client/atr-client.js): the client as the global
 * `AtrClient`, with its helpers as properties of it.
 *
 *   <script src="/atr-client.js"></script>
 *   const client = new AtrClient({ url: `${location.origin.replace(/^http/, 'ws')}/ws/organization/1?token=…` });
 */
import { AtrClient } from './client';
import { backoffDelay } from './backoff';
import { Positions, scopeOfEvent } from './positions';

const exported = Object.assign(AtrClient, { AtrClient, backoffDelay, Positions, scopeOfEvent });
export = exported;
