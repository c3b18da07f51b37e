/**
 * The pieces of the cloner protocol's JSON schemas, each defined once (TypeBox: a JSON
 * Schema object and its TypeScript type from one definition). core/api/routes.ts builds
 * every route's params, querystring, body and response from these; the server registers
 * them (fastify validates with ajv, unknown fields refused, no type coercion) and the
 * clients (CLI, agent) get their argument and result types from the same objects, so a
 * route, its validation and its callers cannot drift.
 *
 * Responses that carry a whole domain record (an image, a node, a layout, a report) are
 * typed with the domain's own interface through `Type.Unsafe` over an empty schema: the
 * server serializes them as they are (no field dropped by a response serializer), and
 * what a client is shown is decided by the domain function (e.g. publicView hides BMC
 * passwords), not by a second copy of the record's shape.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { KERNEL_VERSION_PATTERN } from '../installer/kernel.ts';
import { CHUNK_ID_SOURCE, MAC_INPUT_SOURCE, NAME_SOURCE } from '../names.ts';
import { DEPLOY_PHASES } from '../nodes/deploy-state.ts';
import { POWER_ACTIONS } from '../nodes/states.ts';
import { MAX_SUMMARY_BASE64, MAX_SUMMARY_CHUNKS } from '../multicast/types.ts';

export const Name = Type.String({ pattern: NAME_SOURCE });
export const Mac = Type.String({ pattern: MAC_INPUT_SOURCE });
export const ChunkId = Type.String({ pattern: CHUNK_ID_SOURCE });
export const Count = Type.Integer({ minimum: 0 });

/** Every 4xx/5xx answer: a constant code, a one-line message, a hint. */
export const ErrorBody = Type.Object({ error: Type.String(), message: Type.String(), hint: Type.String() });
export type ErrorBody = Static<typeof ErrorBody>;

/** A response typed by a domain interface, serialized as it is. */
export const Record = <T>() => Type.Unsafe<T>({});

export const NameParams = Type.Object({ name: Name });
export const Ids = (maxItems: number) => Type.Object({ ids: Type.Array(ChunkId, { maxItems }) }, { additionalProperties: false });

/** The statistics of a revision as a client reports them (checked against the tree at commit). */
export const RevisionStats = Type.Object({ files: Count, bytes: Count, leftOut: Type.Optional(Count) }, { additionalProperties: false });
/** The paths a capture did not store, and why (the first LEFT_OUT_LISTED of them; stats.leftOut counts all). */
export const LeftOutPaths = Type.Array(Type.Object({ path: Type.String({ maxLength: 8192 }), why: Type.String({ maxLength: 200 }) }, { additionalProperties: false }), { maxItems: 1000 });

export const RevisionBody = Type.Object(
  {
    tree: ChunkId,
    layout: Type.Optional(Type.Union([Name, Type.Null()])),
    options: Type.Optional(Type.Union([ChunkId, Type.Null()])),
    note: Type.Optional(Type.String({ maxLength: 1000 })),
    stats: RevisionStats,
    leftOut: Type.Optional(LeftOutPaths),
    create: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type RevisionBody = Static<typeof RevisionBody>;

export const LayoutVersionQuery = Type.Object({ version: Type.Optional(Type.String({ pattern: '^[1-9][0-9]{0,8}$' })) }, { additionalProperties: false });
export const LayoutVersionParams = Type.Object({ name: Name, version: Type.String({ pattern: '^[1-9][0-9]{0,8}$' }) });
export const LayoutRollbackBody = Type.Object({ version: Type.Integer({ minimum: 1, maximum: 999_999_999 }) }, { additionalProperties: false });

/** Two revisions of an image to compare (GET /v1/images/:name/diff). */
export const DiffQuery = Type.Object(
  { from: Type.String({ pattern: '^[1-9][0-9]{0,8}$' }), to: Type.String({ pattern: '^[1-9][0-9]{0,8}$' }), limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,5}$' })) },
  { additionalProperties: false },
);

export const AttachmentKind = Type.Enum(['script', 'bios']);
export const AttachmentParams = Type.Object({ name: Name, kind: AttachmentKind, item: Name });

export const NodeChange = Type.Object(
  { settings: Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 256 }), create: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);

/** Puts a node in one group, or takes it out (`remove`). */
export const GroupChange = Type.Object({ group: Name, remove: Type.Optional(Type.Boolean()) }, { additionalProperties: false });

export const PowerBody = Type.Object({ action: Type.Enum(POWER_ACTIONS) }, { additionalProperties: false });

export const IdentifyQuery = Type.Union([
  Type.Object({ mac: Mac }, { additionalProperties: false }),
  Type.Object({ node: Name }, { additionalProperties: false }),
]);
export type IdentifyQuery = Static<typeof IdentifyQuery>;

const Phase = Type.Enum(DEPLOY_PHASES);
/** Fields a status report and a result share (untrusted input from a node). */
const deployShared = {
  phase: Phase,
  message: Type.Optional(Type.String({ maxLength: 2000 })),
  image: Type.Optional(Name),
  revision: Type.Optional(Type.Integer({ minimum: 1 })),
  fetchedBytes: Type.Optional(Count),
};

/** A live report of one node's deploy. */
export const DeployStatusBody = Type.Object(
  {
    ...deployShared,
    bytes: Type.Optional(Count),
    totalBytes: Type.Optional(Count),
    rate: Type.Optional(Type.Number({ minimum: 0 })),
    started: Type.Optional(Type.String({ maxLength: 40 })),
  },
  { additionalProperties: false },
);
export type DeployStatusBody = Static<typeof DeployStatusBody>;

/** The end of a deploy, as the agent reports it. */
export const DeployResultBody = Type.Object(
  {
    ...deployShared,
    ok: Type.Boolean(),
    seconds: Type.Optional(Type.Number({ minimum: 0 })),
    /** Every warning of the deploy (the agent trims the lists to fit the body limit). */
    warnings: Type.Optional(Type.Array(Type.String({ maxLength: 1000 }), { maxItems: 200 })),
    /** What the identity step changed on the node: file and what changed. */
    changes: Type.Optional(Type.Array(Type.Object({ file: Type.String({ maxLength: 1000 }), change: Type.String({ maxLength: 1000 }) }, { additionalProperties: false }), { maxItems: 200 })),
  },
  { additionalProperties: false },
);
export type DeployResultBody = Static<typeof DeployResultBody>;

export const HOSTKEY_NAME_SOURCE = '^ssh_host_[a-z0-9]{1,16}_key(\\.pub)?$';
/** A node's SSH host keys: file name -> base64 content. */
export const HostKeys = Type.Object(
  {
    files: Type.Record(Type.String({ pattern: HOSTKEY_NAME_SOURCE }), Type.String({ maxLength: 16384, pattern: '^[A-Za-z0-9+/=]*$' }), { minProperties: 1, maxProperties: 16 }),
  },
  { additionalProperties: false },
);
export type HostKeys = Static<typeof HostKeys>;

export const BootFileParams = Type.Object({ file: Type.Enum(['vmlinuz', 'initrd.img']) });
/** A kernel version (`uname -r`): an installer's key (core/installer/kernel.ts). */
export const KernelVersion = Type.String({ pattern: KERNEL_VERSION_PATTERN, maxLength: 64 });
export const InstallerFileParams = Type.Object({ version: KernelVersion, file: Type.Enum(['vmlinuz', 'initrd.img']) });
export const InstallerCommitBody = Type.Object(
  { overwrite: Type.Boolean(), generator: Type.Optional(Type.Enum(['initramfs-tools', 'dracut'])), buildSeconds: Type.Optional(Type.Number({ minimum: 0, maximum: 86400 })) },
  { additionalProperties: false },
);
export const BootQuery = Type.Object({ mac: Type.Optional(Type.String({ maxLength: 64 })) });

export type { Static, TSchema };

// ---- multicast (core/multicast/hub.ts) ----------------------------------------------

/** Most chunk ids a node may say it lacks (a 30 GiB image of 64 KiB chunks; ~33 MB of JSON). */
export const MAX_MULTICAST_LACKING = 500_000;
export const MulticastSessionId = Type.String({ pattern: '^[0-9a-f]{16}$' });

/**
 * A node's registration: what it lacks of the revision as a bitmap over the revision's
 * sorted distinct chunk ids (core/multicast/summary.ts), with their count and digest.
 */
export const MulticastRegisterBody = Type.Object(
  {
    image: Name,
    revision: Type.Integer({ minimum: 1 }),
    chunks: Type.Integer({ minimum: 0, maximum: MAX_SUMMARY_CHUNKS }),
    digest: ChunkId,
    lacking: Type.String({ maxLength: MAX_SUMMARY_BASE64, pattern: '^[A-Za-z0-9+/]*={0,2}$' }),
    linkMbps: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000_000 })),
  },
  { additionalProperties: false },
);

export const MulticastReadyBody = Type.Object({ session: MulticastSessionId }, { additionalProperties: false });

/** A NACK: chunks with nothing received, and lost datagram offsets of chunks partly here. */
export const MulticastReportBody = Type.Object(
  {
    session: MulticastSessionId,
    round: Type.Integer({ minimum: 1, maximum: 1000 }),
    missing: Type.Array(ChunkId, { maxItems: MAX_MULTICAST_LACKING }),
    gaps: Type.Array(Type.Tuple([ChunkId, Type.Array(Count, { maxItems: 4096 })]), { maxItems: MAX_MULTICAST_LACKING }),
  },
  { additionalProperties: false },
);

/** A receiver's poll while in a session: the session's datagrams it read and lost so far (the sender adapts its rate, core/multicast/rate.ts). */
export const MulticastProgressBody = Type.Object(
  { session: MulticastSessionId, datagrams: Type.Integer({ minimum: 0, maximum: 2 ** 52 }), lost: Type.Integer({ minimum: 0, maximum: 2 ** 52 }) },
  { additionalProperties: false },
);

export const MulticastStartBody = Type.Object(
  {
    image: Name,
    nodes: Type.Array(Name, { minItems: 1, maxItems: 100_000 }),
    minReceivers: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    maxWaitS: Type.Optional(Type.Number({ minimum: 1, maximum: 86_400 })),
    /** Bits per second on the wire. */
    rate: Type.Optional(Type.Number({ minimum: 1e5, maximum: 1e11 })),
    group: Type.Optional(Type.String({ pattern: '^239\\.([0-9]{1,3})\\.([0-9]{1,3})\\.([0-9]{1,3})$' })),
    interface: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,15}$' })),
    ttl: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
    mtu: Type.Optional(Type.Integer({ minimum: 576, maximum: 9000 })),
    /** How lost datagrams are repaired (core/multicast/sender.ts). */
    repair: Type.Optional(Type.Union([Type.Literal('parity'), Type.Literal('resend')])),
    dryRun: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);
export type MulticastStartBody = Static<typeof MulticastStartBody>;
