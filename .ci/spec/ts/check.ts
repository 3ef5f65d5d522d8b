// Type-level check that openapi.yaml yields usable TypeScript types (make ts-check).
// The Makefile generates ./gen/schema.d.ts with openapi-typescript (gitignored), then runs
// `tsc --strict --noEmit -p .ci/spec/ts`. Nothing here runs; it only has to type-check.
// The `@ts-expect-error` lines prove the types are precise (not `any`): each must be an error.
import type { components, operations, paths } from './gen/schema';

type Schemas = components['schemas'];
type CreateApiKeyRequest = Schemas['CreateApiKeyRequest'];
type RegenerateApiKeyRequest = Schemas['RegenerateApiKeyRequest'];
type ApiKeyEnvelope = Schemas['ApiKeyEnvelope'];
type ErrorEnvelope = Schemas['ErrorEnvelope'];

// --- requests ---------------------------------------------------------------------------------

export const createRequest: CreateApiKeyRequest = {
  name: 'Checkout backend',
  permissions: { payment: ['create', 'read'], 'account:api:key': ['create'] },
  expires_at: '2030-01-01T00:00:00Z',
  metadata: { team: 'checkout' },
};

// The optional fields may be left out.
export const minimalCreateRequest: CreateApiKeyRequest = { name: 'ci', permissions: {} };

// @ts-expect-error `permissions` is required.
export const missingPermissions: CreateApiKeyRequest = { name: 'ci' };

// @ts-expect-error the request schema has additionalProperties: false.
export const unknownField: CreateApiKeyRequest = { name: 'ci', permissions: {}, extra: 1 };

// The regenerate body is optional, and so is its only field (it has a default).
export const regenerateNow: RegenerateApiKeyRequest = {};
export const regenerateWithGrace: RegenerateApiKeyRequest = { grace_period_minutes: 60 };
type RegenerateBody = NonNullable<operations['regenerateApiKey']['requestBody']>['content']['application/json'];
export const regenerateBody: RegenerateBody = regenerateWithGrace;

// The create operation's query parameter and body are the component types.
type CreateOp = paths['/api-keys/']['post'];
export const accountId: CreateOp['parameters']['query']['account_id'] = 'acct_demo';
export const createBody: CreateOp['requestBody']['content']['application/json'] = createRequest;

// --- success responses ------------------------------------------------------------------------

type Created = operations['createApiKey']['responses'][201]['content']['application/json'];

export function plaintextKey(envelope: ApiKeyEnvelope): string {
  const key: ApiKeyEnvelope['data']['key'] = envelope.data.key;
  return key;
}

export function describe(created: Created): string {
  const data = created.data;
  const type: 'SECRET' | 'PUBLISHABLE' = data.type;
  // Nullable fields are `T | null`: strict mode demands the null check.
  const lastUsed: string = data.last_used_at ?? 'never';
  const grace: string | null = data.previous_key_expires_at;
  // @ts-expect-error `last_used_ip` is nullable, so it is not a plain string.
  const ip: string = data.last_used_ip;
  return `${data.id} ${type} ${lastUsed} ${grace ?? '-'} ${ip} ${plaintextKey(created)}`;
}

// @ts-expect-error `status` is an enum; 'REVOKED' is not one of its values.
export const badStatus: Schemas['ApiKey']['status'] = 'REVOKED';

// --- error responses --------------------------------------------------------------------------

type ErrorCode = ErrorEnvelope['error']['code'];

export function errorCode(body: ErrorEnvelope): ErrorCode {
  return body.error.code;
}

export function isRetryable(body: ErrorEnvelope): boolean {
  const code: number = body.error.code;
  const requestId: string = body.error.details.request_id;
  return requestId !== '' && (code === 42900 || code === 50000);
}

// Every 4xx/5xx response of both operations carries the error envelope.
type CreateResponses = operations['createApiKey']['responses'];
type RegenerateResponses = operations['regenerateApiKey']['responses'];
export const notFound: CreateResponses[404]['content']['application/json'] = {
  message: 'Account not found',
  success: false,
  error: { code: 40401, message: 'Account not found', details: { request_id: '01JD8Y6W7Q2X3Z4A5B6C7D8E9F' } },
};
export const rateLimited: ErrorEnvelope = {} as RegenerateResponses[429]['content']['application/json'];
export const internal: ErrorEnvelope = {} as RegenerateResponses[500]['content']['application/json'];

// @ts-expect-error 40399 is not a declared error code.
export const unknownCode: ErrorCode = 40399;
