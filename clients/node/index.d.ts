// Types for wx-plugin-manager-client: wx-server-sdk's cloud.openapi.pluginManager.* over the wx-plugin-manager
// Lambda function. Params and results follow the function's contract; unknown fields pass through.

// Structural stand-ins for the AWS SDK's types, so that these types need no peer dependency installed.
/** A LambdaClient of @aws-sdk/client-lambda (v3). */
export interface LambdaClientLike {
  send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}
/** A LambdaClientConfig of @aws-sdk/client-lambda (region, endpoint, credentials, requestHandler…). */
export interface LambdaClientConfigLike {
  region?: string | (() => Promise<string>);
  endpoint?: string | object;
  credentials?: AwsCredentials | AwsCredentialsProvider;
  [option: string]: unknown;
}
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}
export type AwsCredentialsProvider = () => Promise<AwsCredentials>;

/** Plugin status: 1 pending (申请中), 2 approved, 3 refused, 4 timed out. */
export type PluginStatus = 1 | 2 | 3 | 4;

/** What every success carries, as wx-server-sdk adds it. */
export interface CallOk {
  /** `openapi.pluginManager.<method>:ok` */
  errMsg: string;
  errCode: 0;
  [field: string]: unknown;
}

/** An entry of `getPluginList`'s `pluginList`. */
export interface PluginListEntry {
  appid: string;
  status: PluginStatus;
  nickname: string;
  headimgurl: string;
  /** Undocumented, sent by WeChat. */
  reason?: string;
  [field: string]: unknown;
}

/** An entry of `getPluginDevApplyList`'s `applyList`: a mini program applying for your plugin. */
export interface PluginApplicant {
  appid: string;
  status: PluginStatus;
  nickname: string;
  headimgurl: string;
  categories: Array<{ first: string; second: string; [field: string]: unknown }>;
  /** Unix seconds, as WeChat sends it: a string (sometimes a number). */
  createTime: string | number;
  applyUrl: string;
  reason: string;
  [field: string]: unknown;
}

// Each known field may also be spelled as WeChat spells it (plugin_appid, user_version): the function accepts
// either spelling, not both. Unknown keys are refused by the function (-501007), naming the field.

export type ApplyPluginParams =
  | { action: 'apply'; pluginAppid: string; reason?: string; [field: string]: unknown }
  | { action: 'update'; pluginAppid: string; userVersion: string; [field: string]: unknown }
  | { action: 'apply' | 'update'; plugin_appid: string; [field: string]: unknown };
export interface GetPluginListParams {
  action: 'list';
  [field: string]: unknown;
}
export type UnbindPluginParams =
  | { action: 'unbind'; pluginAppid: string; [field: string]: unknown }
  | { action: 'unbind'; plugin_appid: string; [field: string]: unknown };
export interface GetPluginDevApplyListParams {
  action: 'dev_apply_list';
  /** From 1. */
  page: number;
  num: number;
  [field: string]: unknown;
}
export interface SetDevPluginApplyStatusParams {
  action: 'dev_agree' | 'dev_refuse' | 'dev_delete';
  /** The applicant's appid. */
  appid: string;
  reason?: string;
  [field: string]: unknown;
}

export interface GetPluginListResult extends CallOk {
  pluginList: PluginListEntry[];
}
export interface GetPluginDevApplyListResult extends CallOk {
  applyList: PluginApplicant[];
}

export interface PluginManager {
  applyPlugin(params: ApplyPluginParams): Promise<CallOk>;
  getPluginList(params: GetPluginListParams): Promise<GetPluginListResult>;
  unbindPlugin(params: UnbindPluginParams): Promise<CallOk>;
  getPluginDevApplyList(params: GetPluginDevApplyListParams): Promise<GetPluginDevApplyListResult>;
  setDevPluginApplyStatus(params: SetDevPluginApplyStatusParams): Promise<CallOk>;
}

export interface Cloud {
  openapi: { pluginManager: PluginManager };
}

export interface CommonOptions {
  /** Per attempt, in milliseconds (default 15000: above the template's 10 s function timeout). */
  timeoutMs?: number;
  /**
   * Further attempts after a transport failure (default 2): for `list` and `dev_apply_list` after any; for a change
   * (`apply`, `update`, `unbind`, `dev_agree`, `dev_refuse`, `dev_delete`) only when the request never left
   * (connection refused, host not found). An answer from the function is never retried.
   */
  retries?: number;
  /** Delay before the first retry, doubled each time (default 200). */
  retryDelayMs?: number;
}

export interface LambdaOptions extends CommonOptions {
  /** Name, ARN or partial ARN (a `:alias` suffix allowed). */
  functionName: string;
  /** Version or alias. */
  qualifier?: string;
  /**
   * A LambdaClient to use (its own retries never resend a call: each command disables them), or the config of
   * the one to create (always with maxAttempts: 1). Default: a LambdaClient from the environment.
   */
  lambda?: LambdaClientLike | LambdaClientConfigLike;
  url?: never;
}

export type HttpAuth = 'iam' | 'none' | { bearer: string };

export interface HttpOptions extends CommonOptions {
  /** The gateway's URL: API Gateway route, function URL, ALB listener path. The call is POSTed there. */
  url: string;
  /** 'iam' signs with SigV4; { bearer } sends Authorization: Bearer <key> (GATEWAY_API_KEY); default 'none'. */
  auth?: HttpAuth;
  /** SigV4 region; default from *.lambda-url.<region>.on.aws / *.execute-api.<region>.amazonaws.com, else AWS_REGION. */
  region?: string;
  /** SigV4 service; default `lambda` for a function URL host, else `execute-api`. */
  service?: string;
  /** For 'iam'; default: @aws-sdk/credential-provider-node's defaultProvider(). */
  credentials?: AwsCredentials | AwsCredentialsProvider;
  /** Extra request headers. */
  headers?: Record<string, string>;
  functionName?: never;
}

export declare function createCloud(options: LambdaOptions | HttpOptions): Cloud;

/** Why a call failed, beyond errCode: the function's errorType, or this client's own. */
export type ErrorType =
  | 'WxApiError'
  | 'InvalidEvent'
  | 'TokenError'
  | 'UpstreamError'
  | 'ConfigError'
  | 'TransportError'
  | 'HttpRefused'
  | 'InvalidResponse'
  | (string & {});

/**
 * What every method rejects with, as wx-server-sdk's CloudSDKError: enumerable `errCode` and `errMsg` only;
 * `message` is `errCode: <code> <text> | errMsg: <errMsg>`.
 */
export declare class CloudSDKError extends Error {
  errCode: number;
  errMsg: string;
  /** Not enumerable. */
  readonly errorType?: ErrorType;
  /** Not enumerable: the Lambda or gateway request id, when there was one. */
  readonly requestId?: string;
  /** Not enumerable: the HTTP status (gateway) or Invoke's StatusCode. */
  readonly statusCode?: number;
}

/** The methods and the actions each accepts. */
export declare const METHODS: Readonly<Record<keyof PluginManager, readonly string[]>>;

/** The SigV4 service and region used for a gateway host. */
export declare function signingScope(
  hostname: string,
  overrides?: { service?: string; region?: string },
): { service: string; region: string | undefined };
