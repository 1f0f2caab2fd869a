/**
 * Client messages in: each is routed to the part of the engine it concerns, and whatever it is
 * refused for goes back to its sender as a typed error with a bounded message (shared/protocol/
 * errors.ts). A refusal (a CohortError) is the sender's fault and changed nothing; any other error is
 * ours: the sender is told so (INTERNAL) and the engine recovers (recovery.ts).
 */
import { CohortError } from '../../shared/errors.ts';
import type { Logger } from '../../shared/log.ts';
import {
  boundText,
  errorMessage,
  ErrorCode,
  type ClientMessage,
  type EvalResult,
  type Hello,
  type ProtocolError,
  type Refuse,
  type SecAggUp,
  type ServerMessage,
  type Update,
} from '../../shared/protocol/index.ts';
import { isStoreFailure } from './recovery.ts';
import type { ConnectedClient } from './registry.ts';

/** Where each kind of message goes; all but hello come from a registered client of this job. */
export interface MessageHandlers {
  hello: (connId: string, msg: Hello) => void;
  update: (client: ConnectedClient, msg: Update) => void;
  refuse: (client: ConnectedClient, msg: Refuse) => void;
  evalResult: (client: ConnectedClient, msg: EvalResult) => void;
  secaggUp: (client: ConnectedClient, msg: SecAggUp) => void;
}

export interface IntakeOptions {
  jobId: string;
  log: Logger;
  send: (connId: string, msg: ServerMessage) => void;
  /** The client registered on a connection, if any. */
  client: (connId: string) => ConnectedClient | undefined;
  /** An error of ours while applying `what` (recovery.ts's guard). */
  recover: (what: string, err: unknown) => void;
  handlers: MessageHandlers;
}

export class MessageIntake {
  constructor(private readonly opts: IntakeOptions) {}

  /** A message from a connection: applied, or refused with a typed error reply. */
  message(connId: string, msg: ClientMessage): void {
    try {
      this.dispatch(connId, msg);
    } catch (err) {
      if (err instanceof CohortError && !isStoreFailure(err)) {
        this.reject(connId, err.code, err.message, msg);
      } else {
        // Not the sender's fault: say so, and put the engine back in a consistent state.
        this.reject(connId, ErrorCode.INTERNAL, 'internal error; the message was not applied', msg);
        this.opts.recover(`${msg.type} from ${connId}`, err);
      }
    }
  }

  /** The transport refused a frame before it became a message (it has answered the sender). */
  protocolError(connId: string, error: ProtocolError): void {
    const client = this.opts.client(connId);
    this.opts.log.warn({ client: client?.clientId, connId, code: error.code, reason: error.message }, 'message rejected');
  }

  /** Tells the sender its message was refused (`code`, bounded `message`). */
  reject(connId: string, code: string, message: string, msg?: { type: string; round?: number }): void {
    const client = this.opts.client(connId);
    const text = boundText(message);
    this.opts.log.warn({ client: client?.clientId, connId, code, reason: text }, 'message rejected');
    this.opts.send(connId, errorMessage(code, text, msg));
  }

  private dispatch(connId: string, msg: ClientMessage): void {
    const { handlers, jobId } = this.opts;
    if (msg.type === 'hello') return handlers.hello(connId, msg);
    const client = this.opts.client(connId);
    if (!client) throw new CohortError(ErrorCode.NOT_REGISTERED, `say hello before ${msg.type}`);
    if (msg.jobId !== jobId) {
      throw new CohortError(ErrorCode.UNKNOWN_JOB, `job ${msg.jobId} is not running here (this is ${jobId})`);
    }
    switch (msg.type) {
      case 'update':
        return handlers.update(client, msg);
      case 'refuse':
        return handlers.refuse(client, msg);
      case 'eval_result':
        return handlers.evalResult(client, msg);
      case 'secagg_up':
        return handlers.secaggUp(client, msg);
    }
  }
}
