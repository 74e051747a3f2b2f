/*
 * Types of the wirehub package (hand-written; the code is
 * src/wirehub.js).  The same declarations serve `import` and `require`.
 */

/** A JSON value as it travels in `data`. */
export type Json = null | boolean | number | string | Json[]
    | { [key: string]: Json };

/** A channel message, live or replayed (`type` is the publisher's event). */
export interface ChannelMessage<T = Json> {
    type: string;
    channel: string;
    id: number;
    epoch: string;
    data: T;
    timestamp: string;
}

/** The server's `subscribed` answer: the channel's head when it came. */
export interface Subscribed {
    type: 'subscribed';
    channel: string;
    id: number;
    epoch: string;
    recovered: boolean;
    timestamp: string;
    ref?: string;
}

/** The `published` answer: where the message was stored. */
export interface Published {
    type: 'published';
    channel: string;
    id: number;
    epoch: string;
    timestamp: string;
    ref?: string;
}

/** `data` of `connection_status`. */
export interface Session {
    status: 'connected';
    client_id: string;
    workspace: string;
    session: string;
    active_clients: number;
    /** the session's expiry (seconds), when the server sends it */
    exp?: number;
}

export interface DeviceCommand {
    type: 'device_command';
    command_id: string;
    command: string;
    payload: Json;
    priority: number;
    attempt: number;
    timestamp: string;
}

export interface Gap {
    channel: string;
    id: number;
    epoch: string;
    reason: 'not recovered' | 'new epoch' | 'missing ids';
}

export interface Since {
    id: number;
    epoch?: string;
}

export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting'
    | 'closed';

export type SubscriptionState = 'pending' | 'active' | 'resuming'
    | 'closed';

export interface StateDetail {
    attempt?: number;
    code?: number | null;
    reason?: string;
    delay?: number;
    final?: boolean;
}

/** The WebSocket constructor the client uses (browser or `ws`). */
export interface WebSocketLike {
    readyState: number;
    onopen: ((ev: unknown) => void) | null;
    onmessage: ((ev: { data: unknown }) => void) | null;
    onclose: ((ev: { code: number; reason: string }) => void) | null;
    onerror: ((ev: unknown) => void) | null;
    send(data: string): void;
    close(code?: number, reason?: string): void;
}

export type WebSocketClass = new (url: string) => WebSocketLike;

export interface WirehubOptions {
    /** the endpoint, when not given as the first argument */
    url?: string;
    /**
     * Returns a token (or a promise of one).  Called for every
     * connection, and again before the session's `exp` to renew it in
     * band with `refresh`, without dropping the connection.
     */
    getToken?: () => string | Promise<string>;
    /** a fixed token instead of getToken: no refresh, no retry on 4401 */
    token?: string;
    WebSocket?: WebSocketClass;
    /** sends `register` on every connection */
    clientType?: string;
    clientName?: string;
    /** connect at once (true) or on connect() */
    autoConnect?: boolean;
    backoffInitial?: number;
    backoffMax?: number;
    backoffFactor?: number;
    heartbeatInterval?: number;
    heartbeatTimeout?: number;
    requestTimeout?: number;
    /** refresh this long before `exp` (ms), at most half way there */
    refreshMargin?: number;
    commandMemory?: number;
    random?: () => number;
}

export interface SubscribeOptions {
    /** resume after this message (for example one loaded from history) */
    since?: Since;
}

export interface RpcOptions {
    timeout?: number;
}

export class WirehubError extends Error {
    constructor(code: string, message?: string,
                detail?: { channel?: string; ref?: string; status?: number });
    /** `forbidden`, `rate_limited`, `rpc_failed`, `timeout`,
        `disconnected`, `closed`, `unsubscribed`, ... */
    code: string;
    channel?: string;
    ref?: string;
    status?: number;
}

export type MessageHandler<T = Json> = (msg: ChannelMessage<T>) => void;

export class Subscription {
    readonly channel: string;
    readonly state: SubscriptionState;
    /** why it closed, when it closed */
    readonly error: WirehubError | null;
    /** the first `subscribed`; rejects when the subscription is refused */
    readonly ready: Promise<Subscribed>;
    /** messages of one type, or every message with "*" */
    on<T = Json>(type: string, fn: MessageHandler<T>): () => void;
    off<T = Json>(type: string, fn: MessageHandler<T>): void;
    onState(fn: (state: SubscriptionState,
                 error: WirehubError | null) => void): () => void;
    unsubscribe(): void;
}

export interface ClientEvents {
    state: (state: ClientState, detail: StateDetail | Session) => void;
    connecting: (detail: StateDetail) => void;
    open: (session: Session) => void;
    reconnecting: (detail: StateDetail) => void;
    closed: (detail: StateDetail) => void;
    subscribed: (msg: Subscribed) => void;
    gap: (gap: Gap) => void;
    error: (err: WirehubError) => void;
    /** anything else the server sends (a broadcast, for example) */
    message: (msg: { type: string; [key: string]: unknown }) => void;
}

export class Wirehub {
    constructor(url: string, options: WirehubOptions);
    constructor(options: WirehubOptions);
    readonly url: string;
    readonly state: ClientState;
    /** connection_status data of the current connection, else null */
    readonly session: Session | null;
    connect(): this;
    /** stops for good */
    close(): void;
    on<E extends keyof ClientEvents>(event: E, fn: ClientEvents[E]):
        () => void;
    off<E extends keyof ClientEvents>(event: E, fn: ClientEvents[E]): void;
    subscribe(channel: string, options?: SubscribeOptions): Subscription;
    /** resolves with `published`, rejects with a WirehubError */
    publish(channel: string, type: string | null, data: Json):
        Promise<Published>;
    /**
     * Calls the application behind the server's `wirehub_rpc_pass`;
     * resolves with the backend's JSON answer, rejects `rpc_failed`
     * (or `bad_request` from a server without rpc).
     */
    rpc<T = Json>(method: string, params?: Json, options?: RpcOptions):
        Promise<T>;
    refresh(token: string): Promise<{ type: 'refreshed'; expires: number }>;
    register(clientType: string, clientName?: string):
        Promise<{ type: 'registered'; client_type: string }>;
    /** the handler's value becomes the `completed` result; a throw,
        `failed` */
    onCommand(handler: (cmd: DeviceCommand) => Json | void
                                           | Promise<Json | void>):
        () => void;

    static readonly Wirehub: typeof Wirehub;
    static readonly Subscription: typeof Subscription;
    static readonly WirehubError: typeof WirehubError;
    static backoffDelay(attempt: number, options?: WirehubOptions,
                        random?: () => number): number;
    static tokenExpiry(token: string): number | null;
}

export function backoffDelay(attempt: number, options?: WirehubOptions,
                             random?: () => number): number;
export function tokenExpiry(token: string): number | null;
export function refreshDelay(exp: number, now: number, margin: number):
    number;
export const DEFAULTS: Readonly<Required<Pick<WirehubOptions,
    'backoffInitial' | 'backoffMax' | 'backoffFactor' | 'heartbeatInterval'
    | 'heartbeatTimeout' | 'requestTimeout' | 'refreshMargin'
    | 'commandMemory' | 'autoConnect'>>>;

export default Wirehub;
