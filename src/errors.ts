/**
 * Every error atr throws or reports carries a stable `code`
 * (`ATR_ERR_<AREA>_<WHAT>`); the README's error table lists them.
 */
export class AtrError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AtrError';
    this.code = code;
  }
}

/** A wrong option or argument (a `TypeError`, so `instanceof TypeError` holds too). */
export class AtrConfigError extends TypeError {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'AtrConfigError';
    this.code = code;
  }
}

/** A limit was exceeded (a `RangeError`). */
export class AtrLimitError extends RangeError {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'AtrLimitError';
    this.code = code;
  }
}

/** A model class is configured wrongly (`publicationScope`, `resourceName`, ...). */
export class AtrModelError extends AtrError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'AtrModelError';
  }
}

/** An event could not be built or serialized; that one event is dropped. */
export class AtrSerializeError extends AtrError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AtrSerializeError';
  }
}

/** The broker failed (down, refused, timed out). */
export class AtrBrokerError extends AtrError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'AtrBrokerError';
  }
}

export const codes = {
  CONFIG_UNKNOWN_OPTION: 'ATR_ERR_CONFIG_UNKNOWN_OPTION',
  CONFIG_BROKER: 'ATR_ERR_CONFIG_BROKER',
  CONFIG_OPTION: 'ATR_ERR_CONFIG_OPTION',
  NOT_CONFIGURED: 'ATR_ERR_NOT_CONFIGURED',
  MODEL_SCOPE: 'ATR_ERR_MODEL_PUBLICATION_SCOPE',
  MODEL_RESOURCE_NAME: 'ATR_ERR_MODEL_RESOURCE_NAME',
  MODEL_ACTIONS: 'ATR_ERR_MODEL_PUBLISHABLE_ACTIONS',
  MODEL_ATTRIBUTES: 'ATR_ERR_MODEL_PUBLISHED_ATTRIBUTES',
  MODEL_HOOKS: 'ATR_ERR_MODEL_HOOKS',
  MODEL_CLASS: 'ATR_ERR_MODEL_CLASS',
  EVENT_NAME: 'ATR_ERR_EVENT_NAME',
  EVENT_SCOPE: 'ATR_ERR_EVENT_SCOPE',
  EVENT_SCOPE_MISSING: 'ATR_ERR_EVENT_SCOPE_MISSING',
  SERIALIZE: 'ATR_ERR_SERIALIZE_FAILED',
  BROKER_PUBLISH: 'ATR_ERR_BROKER_PUBLISH',
  BROKER_SUBSCRIBE: 'ATR_ERR_BROKER_SUBSCRIBE',
  BROKER_CONNECTION: 'ATR_ERR_BROKER_CONNECTION',
  BROKER_MESSAGE: 'ATR_ERR_BROKER_MESSAGE',
  BROKER_CLOSED: 'ATR_ERR_BROKER_CLOSED',
  CLIENT_MESSAGE: 'ATR_ERR_CLIENT_MESSAGE',
  CLIENT_RESUME: 'ATR_ERR_CLIENT_RESUME',
  SERVER_AUTHENTICATOR: 'ATR_ERR_SERVER_AUTHENTICATOR',
  SERVER_SCOPE: 'ATR_ERR_SERVER_SCOPE',
  SERVER_SEND: 'ATR_ERR_SERVER_SEND',
} as const;
