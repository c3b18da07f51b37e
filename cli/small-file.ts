/** Reading a small file to upload (layouts, scripts, BIOS settings; bounded, so a wrong path cannot pull in a huge file) and writing one out. */
import { open, writeFile } from 'node:fs/promises';
import { UsageError } from './errors.ts';

export async function readSmallFile(file: string, what: string): Promise<Buffer> {
  const { MAX_ATTACHMENT_BYTES } = await import('../core/tree/attachments.ts');
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    if (size > MAX_ATTACHMENT_BYTES) throw new UsageError(`${file} is ${size} bytes, over ${MAX_ATTACHMENT_BYTES} for ${what}`, 'check the file name');
    return await handle.readFile();
  } finally {
    await handle.close();
  }
}

/** To --output FILE (mode 0600: BIOS settings and scripts may hold secrets), or standard output. */
export async function writeOut(body: Buffer, output: string | undefined, what: string): Promise<void> {
  if (output) {
    await writeFile(output, body, { mode: 0o600 });
    process.stdout.write(`${what} written to ${output}\n`);
  } else process.stdout.write(body);
}
