/** The admin API's route table entries (app.ts declares them; openapi.ts documents them). */
import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { TokenRow } from '../store/index.ts';
import type { Access } from './auth.ts';

export interface Ctx {
  params: Record<string, string>;
  query: Record<string, unknown>;
  body: unknown;
  /** The token that authorised the request (undefined on public routes). */
  token?: TokenRow;
  reply: FastifyReply;
}

export interface RouteSpec {
  method: 'GET' | 'POST';
  url: string;
  access: Access;
  summary: string;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodObject;
  /** Sent as is with this content type (metrics text, model files); JSON otherwise. */
  produces?: string;
  handler(ctx: Ctx): unknown;
}

