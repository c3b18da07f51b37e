/**
 * What a deploy reports while it runs and when it ends, shared by the agent (which sends
 * it), the server (which keeps it) and `cloner status` (which shows it). The shapes are
 * the protocol's schemas (core/api/schemas.ts DeployStatusBody, DeployResultBody); the
 * server adds `updated` to a live status and `at` to a stored result.
 */
import type { DeployResultBody, DeployStatusBody } from '../api/schemas.ts';

export const DEPLOY_PHASES = ['identify', 'pre-scripts', 'layout', 'restore', 'identity', 'post-scripts', 'bootloader', 'bios', 'report', 'done', 'failed'] as const;
export type DeployPhase = (typeof DEPLOY_PHASES)[number];

/** A live report of one node's deploy (kept in the server's memory), with when it came. */
export type DeployStatus = DeployStatusBody & { updated?: string };

/** The end of a deploy, kept in the node record (lastDeploy). */
export type DeployResult = DeployResultBody;
