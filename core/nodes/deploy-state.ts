/**
 * What a deploy reports while it runs and when it ends, shared by the agent (which sends
 * it), the server (which keeps it) and `cloner status` (which shows it).
 */
export const DEPLOY_PHASES = ['identify', 'pre-scripts', 'layout', 'restore', 'identity', 'post-scripts', 'bootloader', 'bios', 'report', 'done', 'failed'] as const;
export type DeployPhase = (typeof DEPLOY_PHASES)[number];

/** A live report of one node's deploy (kept in the server's memory). */
export interface DeployStatus {
  phase: DeployPhase;
  message?: string;
  /** Bytes of file data in place and to place (restore phase). */
  bytes?: number;
  totalBytes?: number;
  /** Bytes fetched from the server so far, and the fetch rate (bytes/s). */
  fetchedBytes?: number;
  rate?: number;
  image?: string;
  revision?: number;
  started?: string;
  updated?: string;
}

/** The end of a deploy, kept in the node record (lastDeploy). */
export interface DeployResult {
  ok: boolean;
  phase: DeployPhase;
  message?: string;
  image?: string;
  revision?: number;
  seconds?: number;
  fetchedBytes?: number;
}

/** Fields a status report and a result share, as JSON schema (untrusted input). */
const sharedFields = {
  phase: { enum: [...DEPLOY_PHASES] },
  message: { type: 'string', maxLength: 2000 },
  image: { type: 'string', maxLength: 64 },
  revision: { type: 'integer', minimum: 1 },
  fetchedBytes: { type: 'integer', minimum: 0 },
} as const;

/** The JSON schema of DeployStatus, for the server's route. */
export const deployStatusSchema = {
  type: 'object',
  required: ['phase'],
  additionalProperties: false,
  properties: {
    ...sharedFields,
    bytes: { type: 'integer', minimum: 0 },
    totalBytes: { type: 'integer', minimum: 0 },
    rate: { type: 'number', minimum: 0 },
    started: { type: 'string', maxLength: 40 },
  },
} as const;

export const deployResultSchema = {
  type: 'object',
  required: ['ok', 'phase'],
  additionalProperties: false,
  properties: {
    ...sharedFields,
    ok: { type: 'boolean' },
    seconds: { type: 'number', minimum: 0 },
  },
} as const;
