/**
 * The admin API as an OpenAPI 3.1 document, made from the same route table the fastify routes are
 * (app.ts ROUTES), with zod 4's JSON Schema export for parameters and bodies — so the document cannot
 * drift from the routes (a test compares it with the live route list).
 */
import { z } from 'zod';
import type { RouteSpec } from './types.ts';

const errorSchema = {
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'a code of the error registry (shared/errors.ts)' },
        message: { type: 'string', maxLength: 1024 },
        issues: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
      },
    },
  },
};

/** `/api/v1/jobs/:id` → `/api/v1/jobs/{id}`. */
export function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z_]+)/g, '{$1}');
}

function parameters(route: RouteSpec): unknown[] {
  const out: unknown[] = [];
  const add = (schema: z.ZodObject | undefined, where: 'path' | 'query') => {
    if (!schema) return;
    const json = z.toJSONSchema(schema, { io: 'input' }) as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, s] of Object.entries(json.properties ?? {})) {
      out.push({ name, in: where, required: where === 'path' || (json.required ?? []).includes(name), schema: s });
    }
  };
  add(route.params, 'path');
  add(route.query, 'query');
  return out;
}

export function openApiDocument(routes: readonly RouteSpec[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const path = openApiPath(r.url);
    const errors = {
      '400': { description: 'invalid parameters or body', content: { 'application/json': { schema: errorSchema } } },
      ...(r.access === 'public'
        ? {}
        : {
            '401': { description: 'no token, or an unknown or revoked one', content: { 'application/json': { schema: errorSchema } } },
            '403': { description: `the token's role is below ${r.access}`, content: { 'application/json': { schema: errorSchema } } },
            '429': { description: 'too many failed authentications from this address', content: { 'application/json': { schema: errorSchema } } },
          }),
      '404': { description: 'no such job or version', content: { 'application/json': { schema: errorSchema } } },
      '409': { description: 'the transition is not possible now', content: { 'application/json': { schema: errorSchema } } },
    };
    paths[path] ??= {};
    paths[path][r.method.toLowerCase()] = {
      summary: r.summary,
      'x-cohort-role': r.access,
      ...(r.access === 'public' ? { security: [] } : {}),
      parameters: parameters(r),
      ...(r.body ? { requestBody: { required: false, content: { 'application/json': { schema: z.toJSONSchema(r.body, { io: 'input' }) } } } } : {}),
      responses: { '200': { description: 'OK', content: { [r.produces ?? 'application/json']: {} } }, ...errors },
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Cohort coordinator admin API', version: '1' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
