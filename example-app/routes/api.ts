/** The JSON API of DESIGN.md's example contract. */
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import { registry, scopeKey } from '../../src/index';
import type { Atr } from '../../src/index';
import { actorStore } from '../actor';
import { DUMMY_HASH, verifyPassword } from '../auth/password';
import { bearerToken, issueToken, verifyToken } from '../auth/token';
import type { Models } from '../models';
import type { User } from '../models/user';

type Authed = Request & { user: User };

const TITLE_MAX = 200;
const BODY_MAX = 10_000;

function problem(res: Response, status: number, error: string): void {
  res.status(status).json({ error });
}

/** Checks `{title, body}`; for a patch both are optional. Returns an error message or the clean fields. */
function postFields(input: unknown, partial: boolean): string | { title?: string; body?: string } {
  if (input === null || typeof input !== 'object') return 'send a JSON object {title, body}';
  const { title, body } = input as Record<string, unknown>;
  const out: { title?: string; body?: string } = {};
  if (title !== undefined || !partial) {
    if (typeof title !== 'string' || title.trim() === '' || title.length > TITLE_MAX) return `title must be text of 1 to ${TITLE_MAX} characters`;
    out.title = title.trim();
  }
  if (body !== undefined || !partial) {
    if (typeof body !== 'string' || body.length > BODY_MAX) return `body must be text of at most ${BODY_MAX} characters`;
    out.body = body;
  }
  if (partial && Object.keys(out).length === 0) return 'send title and/or body';
  return out;
}

export function apiRouter(models: Models, secret: string, atr: Atr): express.Router {
  const { Organization, User, Post } = models;
  const router = express.Router();
  router.use(express.json({ limit: '64kb' }));

  router.post('/session', async (req, res) => {
    const { email, password } = (req.body ?? {}) as Record<string, unknown>;
    if (typeof email !== 'string' || typeof password !== 'string') return problem(res, 400, 'send {email, password}');
    const user = await User.query().findOne({ email: email.trim().toLowerCase() });
    const ok = await verifyPassword(password, user?.password_hash ?? DUMMY_HASH);
    if (!user || !ok) return problem(res, 401, 'wrong email or password');
    const organization = await Organization.query().findById(user.organization_id);
    res.json({ token: issueToken(user.id, secret), user, organization });
  });

  async function authenticate(req: Request, res: Response, next: NextFunction): Promise<void> {
    const id = verifyToken(bearerToken(req.headers.authorization), secret);
    const user = id === undefined ? undefined : await User.query().findById(id);
    if (!user) return problem(res, 401, 'sign in first (Authorization: Bearer <token>)');
    (req as Authed).user = user;
    actorStore.run({ id: user.id, name: user.name }, next);
  }
  router.use(authenticate);

  router.get('/organization', async (req, res) => {
    const { user } = req as Authed;
    const organization = await Organization.query().findById(user.organization_id);
    if (!organization) return problem(res, 404, 'no such organization');
    res.json({
      ...organization.toJSON(),
      websocket_url: `/ws/organization/${organization.id}`,
      websocket_channels: registry.scopedChannels(scopeKey('organization', organization.id)),
    });
  });

  // Snapshot then subscribe: the scope's position is read BEFORE the rows, so
  // every change the rows may miss has an event after that position, which
  // the page's client asks for when it connects (applying one twice is harmless).
  router.get('/posts', async (req, res) => {
    const { user } = req as Authed;
    const scope = scopeKey('organization', user.organization_id);
    const position = await atr.position(scope).catch(() => undefined);
    const posts = await Post.query().where({ organization_id: user.organization_id }).orderBy('id', 'desc');
    if (position !== undefined) {
      res.set('Atr-Scope', scope);
      res.set('Atr-Position', position);
    }
    res.json(posts);
  });

  router.post('/posts', async (req, res) => {
    const { user } = req as Authed;
    const fields = postFields(req.body, false);
    if (typeof fields === 'string') return problem(res, 400, fields);
    const now = new Date().toISOString();
    const post = await Post.query().insertAndFetch({
      ...fields,
      organization_id: user.organization_id,
      author_id: user.id,
      created_at: now,
      updated_at: now,
    });
    res.status(201).json(post);
  });

  /** A post of the user's organization, or 404 (a post of another organization does not exist for them). */
  async function findPost(req: Request, res: Response) {
    const { user } = req as Authed;
    const id = Number(req.params.id);
    const post = Number.isSafeInteger(id) && id > 0
      ? await Post.query().findOne({ id, organization_id: user.organization_id })
      : undefined;
    if (!post) problem(res, 404, 'no such post');
    return post;
  }

  router.patch('/posts/:id', async (req, res) => {
    const fields = postFields(req.body, true);
    if (typeof fields === 'string') return problem(res, 400, fields);
    const post = await findPost(req, res);
    if (!post) return;
    res.json(await post.$query().patchAndFetch({ ...fields, updated_at: new Date().toISOString() }));
  });

  router.delete('/posts/:id', async (req, res) => {
    const post = await findPost(req, res);
    if (!post) return;
    await post.$query().delete();
    res.json(post);
  });

  router.use((_req: Request, res: Response) => problem(res, 404, 'no such API'));
  // Express 5 hands rejected promises of async handlers here.
  router.use((err: Error & { status?: number; type?: string }, _req: Request, res: Response, _next: NextFunction) => {
    if (err.type === 'entity.parse.failed') return problem(res, 400, 'the body is not valid JSON');
    if (err.status && err.status < 500) return problem(res, err.status, err.message);
    console.error(err);
    problem(res, 500, 'internal error');
  });
  return router;
}
