/**
 * Error classes of the store. Callers branch on the class or its constant `code`,
 * never on message text; `hint` is the one line a user is told to try next.
 */

import { ClonerError } from '../errors.ts';

export class StoreError extends ClonerError {
  override readonly code: string = 'STORE_ERROR';
}

export class ChunkMissingError extends StoreError {
  override readonly code = 'CHUNK_MISSING';
  override readonly status = 404;
  readonly id: string;
  constructor(id: string) {
    super(`chunk ${id} is not in the store`, 'run `cloner verify` on the server; re-run the capture to upload it again');
    this.id = id;
  }
}

export class ChunkCorruptError extends StoreError {
  override readonly code = 'CHUNK_CORRUPT';
  readonly id: string;
  constructor(id: string, detail: string) {
    super(`chunk ${id} is corrupt: ${detail}`, 'run `cloner verify` to list damaged chunks; a re-capture stores them again');
    this.id = id;
  }
}

export class InvalidChunkError extends StoreError {
  override readonly code = 'CHUNK_INVALID';
}

export class StoreLockedError extends StoreError {
  override readonly code = 'STORE_LOCKED';
}

export class StoreFormatError extends StoreError {
  override readonly code = 'STORE_FORMAT';
}

/** The store's LevelDB index cannot be opened: its files are damaged. */
export class StoreIndexDamagedError extends StoreError {
  override readonly code = 'STORE_INDEX_DAMAGED';
}

export class RevisionRefusedError extends StoreError {
  override readonly code = 'REVISION_REFUSED';
  override readonly status = 409;
}

export class ImageNotFoundError extends StoreError {
  override readonly code = 'IMAGE_NOT_FOUND';
  override readonly status = 404;
}

export class ObjectInvalidError extends StoreError {
  override readonly code = 'OBJECT_INVALID';
}

/**
 * The store's filesystem has no room for a write (ENOSPC, EDQUOT, or less free space than
 * the write plus the headroom the index needs). Nothing of the refused write is stored or
 * indexed; HTTP 507 (Insufficient Storage).
 */
export class StoreFullError extends StoreError {
  override readonly code = 'STORE_FULL';
  override readonly status = 507;
}
