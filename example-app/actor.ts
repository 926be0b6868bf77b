/**
 * Who made a change: the API runs each authenticated request inside
 * `actorStore.run(actor, …)`; the event serializer (created when the write's
 * event is handed to atr, still inside that request) adds it to the event as
 * `actor`, so a page can leave out notifications of its own changes.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { DefaultEventSerializer } from '../src/index';

export interface Actor {
  id: number;
  name: string;
}

export const actorStore = new AsyncLocalStorage<Actor>();

export class ExampleEventSerializer extends DefaultEventSerializer {
  private readonly actor = actorStore.getStore();

  override toJSON(): Record<string, unknown> {
    const json = super.toJSON();
    if (this.actor) json.actor = { id: this.actor.id, name: this.actor.name };
    return json;
  }
}
