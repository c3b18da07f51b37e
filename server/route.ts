/**
 * Registers a route of the protocol table (core/api/routes.ts) on the fastify app: its
 * method, URL, access level (checked by the onRequest hook in server/app.ts), body limit
 * and schemas come from the table, so the server validates exactly what the clients are
 * typed against; the handler's request is typed from the same schemas. Every error answer
 * is the JSON body {error, message, hint} (ErrorBody).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Static, TSchema } from 'typebox';
import { JSON_BODY_LIMIT, NO_BODY_LIMIT, type RouteDef, type RouteOutput } from '../core/api/routes.ts';
import { ErrorBody } from '../core/api/schemas.ts';

type S<T> = T extends TSchema ? Static<T> : unknown;
export type RouteRequest<D extends RouteDef> = FastifyRequest<{ Params: S<D['params']>; Querystring: S<D['querystring']>; Body: S<D['body']> }>;

/** Serves `d` with `handler`; a JSON route's handler returns its typed answer (or the reply it sent). */
export function serve<D extends RouteDef>(
  app: FastifyInstance,
  d: D,
  handler: (req: RouteRequest<D>, reply: FastifyReply) => Promise<(D['raw'] extends true ? unknown : RouteOutput<D>) | FastifyReply>,
): void {
  const errors = { '4xx': ErrorBody, '5xx': ErrorBody };
  app.route({
    method: d.method,
    url: d.url,
    config: { access: d.access },
    // A route without a body (no schema, not raw) takes none: NO_BODY_LIMIT.
    bodyLimit: d.bodyLimit ?? (d.body || d.raw ? JSON_BODY_LIMIT : NO_BODY_LIMIT),
    schema: {
      ...(d.params ? { params: d.params } : {}),
      ...(d.querystring ? { querystring: d.querystring } : {}),
      ...(d.body ? { body: d.body } : {}),
      response: d.response ? { [d.status ?? 200]: d.response, ...errors } : errors,
    },
    handler: async (req, reply) => {
      if (d.status) reply.code(d.status);
      return handler(req as RouteRequest<D>, reply);
    },
  });
}

/** Sends the error body with a status (for answers that are not thrown ClonerErrors). */
export function sendError(reply: FastifyReply, status: number, error: string, message: string, hint = ''): FastifyReply {
  return reply.code(status).type('application/json').send({ error, message, hint });
}
